"""Confidence-aware query pruning decoder (ReferDINO, Sec. "query pruning")."""
import copy
import math
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn
from mmdet.models.layers.transformer.grounding_dino_layers import GroundingDinoTransformerDecoder
from mmdet.models.layers.transformer.utils import MLP, coordinate_to_encoding, inverse_sigmoid
from mmengine.model import ModuleList
from torch import Tensor

from .decoder_layer import SwitchableGroundingDecoderLayer


def num_kept_queries(num_queries: int, drop_rate: float) -> int:
    """Queries kept after one pruning step: ``ceil(Q * (1 - drop_rate))`` (at least 1)."""
    return max(1, int(math.ceil(num_queries * (1.0 - drop_rate) - 1e-9)))


def pruning_confidence(attn_weights: Tensor, cls_logits: Tensor) -> Tensor:
    """Confidence of each query, as in the official ReferDINO code.

    The mean of two terms, each softmax-normalised over the queries:
    (a) the self-attention a query *receives* from the other queries (diagonal excluded,
    summed over senders) and (b) its class logit (max over text tokens) computed from the
    layer's raw output (before the decoder's final ``norm``).

    Args:
        attn_weights (Tensor): (B, Q, Q) head-averaged self-attention, row = sender.
        cls_logits (Tensor): (B, Q) max-over-tokens class logits.

    Returns:
        Tensor: (B, Q) confidences (each term sums to 1 over Q).
    """
    num_q = attn_weights.shape[-1]
    off_diag = 1.0 - torch.eye(num_q, device=attn_weights.device, dtype=attn_weights.dtype)
    received = (attn_weights * off_diag).sum(dim=1)  # sum over senders i of A[i, j]
    return 0.5 * (received.softmax(-1) + cls_logits.softmax(-1))


class PruningGroundingDinoDecoder(GroundingDinoTransformerDecoder):
    """Grounding DINO decoder that drops ``drop_rate`` of its queries after every layer.

    After layer ``l`` the confidence of every query (:func:`pruning_confidence`) ranks the
    queries and the top ``ceil(Q_l * (1 - drop_rate))`` are kept with their reference boxes,
    so 900 queries become 450, 225, 113, 57, 29, 15 over six layers at ``drop_rate=0.5``.
    At ``drop_rate=0`` every query is kept; with ``prune_mode='confidence'`` they are still
    re-ordered by confidence after every layer, as the official decoder does (the same set,
    so only ties of a later ``argmax`` can tell the difference). ``prune_mode='random'``
    keeps a random subset of the same size (the paper's control experiment).

    Args:
        drop_rate (float): fraction of queries dropped after each layer. Defaults to 0.5.
        prune_mode (str): ``'confidence'`` or ``'random'``. Defaults to ``'confidence'``.
        **kwargs: arguments of ``GroundingDinoTransformerDecoder`` (``num_layers``,
            ``layer_cfg``, ``return_intermediate``, ...).
    """

    def __init__(self,
                 *args,
                 drop_rate: float = 0.5,
                 prune_mode: str = 'confidence',
                 **kwargs) -> None:
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f'drop_rate must be in [0, 1), got {drop_rate}')
        if prune_mode not in ('confidence', 'random'):
            raise ValueError(f"prune_mode must be 'confidence' or 'random', got {prune_mode!r}")
        self.drop_rate = drop_rate
        self.prune_mode = prune_mode
        super().__init__(*args, **kwargs)

    def _init_layers(self) -> None:
        self.layers = ModuleList(
            [SwitchableGroundingDecoderLayer(**self.layer_cfg) for _ in range(self.num_layers)])
        self.embed_dims = self.layers[0].embed_dims
        self.ref_point_head = MLP(self.embed_dims * 2, self.embed_dims, self.embed_dims, 2)
        self.norm = nn.LayerNorm(self.embed_dims)

    def query_counts(self, num_queries: int) -> List[int]:
        """Number of queries entering the first layer and leaving every layer."""
        counts = [num_queries]
        for _ in range(self.num_layers):
            counts.append(
                num_kept_queries(counts[-1], self.drop_rate) if self.drop_rate > 0 else counts[-1])
        return counts

    def select(self, attn_weights: Optional[Tensor], cls_logits: Optional[Tensor],
               num_keep: int) -> Tensor:
        """Indices (B, num_keep) of the queries to keep, best first.

        Args:
            attn_weights (Tensor): (B, Q, Q) self-attention weights.
            cls_logits (Tensor): (B, Q) class logits.
            num_keep (int): how many to keep.
        """
        bsz, num_q = cls_logits.shape
        if self.prune_mode == 'random':
            return torch.rand(bsz, num_q, device=cls_logits.device).argsort(-1)[:, :num_keep]
        conf = pruning_confidence(attn_weights, cls_logits)
        return conf.topk(num_keep, dim=-1).indices

    def forward(self,
                query: Tensor,
                value: Tensor,
                key_padding_mask: Tensor,
                self_attn_mask: Optional[Tensor],
                reference_points: Tensor,
                spatial_shapes: Tensor,
                level_start_index: Tensor,
                valid_ratios: Tensor,
                reg_branches: nn.ModuleList,
                cls_branches: Optional[nn.ModuleList] = None,
                memory_text: Optional[Tensor] = None,
                text_attention_mask: Optional[Tensor] = None,
                class_logits: Optional[Callable[..., Tensor]] = None,
                **kwargs) -> Dict[str, List[Tensor]]:
        """Decode, pruning after each layer.

        Args:
            query (Tensor): (B, Q, C) initial content queries.
            value (Tensor): (B, S, C) encoder memory.
            key_padding_mask (Tensor): (B, S) True on padding, or None.
            self_attn_mask (Tensor): must be None (no denoising queries with pruning).
            reference_points (Tensor): (B, Q, 4) initial boxes, cxcywh in [0, 1].
            spatial_shapes (Tensor): (levels, 2); level_start_index (levels,);
            valid_ratios (Tensor): (B, levels, 2).
            reg_branches (ModuleList): per-layer box MLPs.
            cls_branches (ModuleList): per-layer contrastive class heads; needed when pruning
                by confidence (class logit = max over the valid tokens).
            memory_text (Tensor): (B, L, C); text_attention_mask (Tensor): (B, L) True = pad.
            class_logits (callable, optional): ``(layer_id, hidden (B, Q, C), memory_text,
                text_token_mask (B, L) True = valid) -> (B, Q)``, the head's own class rule
                (``ReferDINOHead.class_logits``); replaces ``cls_branches`` when given.

        Returns:
            dict of per-layer lists (layer ``l`` has ``Q_{l+1}`` queries after pruning):

            - ``hidden_states``: (B, Q_{l+1}, C) normalised layer outputs.
            - ``references``: (B, Q_{l+1}, 4) the *input* reference boxes of the kept queries
              (the base the layer's box delta is added to).
            - ``keep_indices``: (B, Q_{l+1}) indices into the layer's input queries.
            - ``query_indices``: (B, Q_{l+1}) indices into the initial queries.
        """
        if self_attn_mask is not None and self.drop_rate > 0:
            raise ValueError('query pruning does not support denoising/self-attention masks')
        prune = self.drop_rate > 0
        has_rule = cls_branches is not None or class_logits is not None
        if prune and self.prune_mode == 'confidence' and not has_rule:
            raise ValueError('confidence pruning needs cls_branches or class_logits')
        # ranked (and so re-ordered) every layer; at drop 0 only when a class rule is given
        # and no self-attention mask ties the queries' positions
        rank = self.prune_mode == 'confidence' and (prune or (has_rule and self_attn_mask is None))
        if class_logits is None:

            def class_logits(lid, hidden, text, mask):
                return cls_branches[lid](hidden, text, mask).max(-1).values

        text_token_mask = None if text_attention_mask is None else ~text_attention_mask
        bsz = query.shape[0]
        query_ids = torch.arange(query.shape[1], device=query.device).expand(bsz, -1)
        out = dict(hidden_states=[], references=[], keep_indices=[], query_indices=[])
        for lid, layer in enumerate(self.layers):
            ref_input = reference_points[:, :, None] * torch.cat([valid_ratios, valid_ratios],
                                                                 -1)[:, None]
            query_pos = self.ref_point_head(coordinate_to_encoding(ref_input[:, :, 0, :]))
            need_weights = rank
            result = layer(
                query,
                query_pos=query_pos,
                value=value,
                key_padding_mask=key_padding_mask,
                self_attn_mask=self_attn_mask,
                spatial_shapes=spatial_shapes,
                level_start_index=level_start_index,
                valid_ratios=valid_ratios,
                reference_points=ref_input,
                memory_text=memory_text,
                text_attention_mask=text_attention_mask,
                need_attn_weights=need_weights,
                **kwargs)
            query, weights = result if need_weights else (result, None)
            new_reference = (reg_branches[lid](query) +
                             inverse_sigmoid(reference_points, eps=1e-3)).sigmoid()
            if need_weights or prune:
                num_keep = num_kept_queries(query.shape[1], self.drop_rate) if prune \
                    else query.shape[1]
                if self.prune_mode == 'confidence':
                    # the class term scores the raw layer output (not normalised), as the
                    # official decoder does
                    logits = class_logits(lid, query, memory_text, text_token_mask)
                else:
                    logits = query.new_zeros(query.shape[:2])
                keep = self.select(weights, logits.detach(), num_keep)
            else:
                keep = torch.arange(query.shape[1], device=query.device).expand(bsz, -1)
            query = _gather(query, keep)
            out['references'].append(_gather(reference_points, keep))
            reference_points = _gather(new_reference, keep).detach()
            query_ids = torch.gather(query_ids, 1, keep)
            out['hidden_states'].append(self.norm(query))
            out['keep_indices'].append(keep)
            out['query_indices'].append(query_ids)
        return out


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """Gather rows of ``x`` (B, Q, D) with ``index`` (B, K) -> (B, K, D)."""
    return torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))


class PruningDecoderMixin:
    """For a ``GroundingDINO`` subclass: builds the decoder as
    :class:`PruningGroundingDinoDecoder` (mmdet's ``_init_layers`` hard-codes its decoder class).
    The decoder config may hold ``drop_rate`` (default 0.5) and ``prune_mode`` (default
    ``'confidence'``)."""

    def _init_layers(self) -> None:
        cfg = copy.deepcopy(dict(self.decoder))
        prune = dict(
            drop_rate=cfg.pop('drop_rate', 0.5), prune_mode=cfg.pop('prune_mode', 'confidence'))
        self.decoder = cfg
        super()._init_layers()
        self.decoder = PruningGroundingDinoDecoder(**cfg, **prune)

"""Grounding-guided deformable mask decoder."""
import copy
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from mmdet.models.layers.transformer.utils import MLP, coordinate_to_encoding
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from ..layers.decoder_layer import SwitchableGroundingDecoderLayer

DEFAULT_MASK_LAYER = dict(
    self_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0),
    cross_attn_text_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0),
    cross_attn_cfg=dict(embed_dims=256, num_levels=1, num_points=16, dropout=0.0),
    ffn_cfg=dict(embed_dims=256, feedforward_channels=2048, ffn_drop=0.0))


@MODELS.register_module()
class GroundingMaskDecoder(BaseModule):
    """``num_layers`` Grounding-DINO decoder layers over the single-level map F_seg.

    Each layer: self-attention among the queries -> cross-attention to the text ->
    1-level deformable cross-attention on F_seg (16 points) whose reference is a box of the
    query (cx, cy, w, h): the detector passes the decoder layer's input reference box, as the
    official code, or the predicted box (``ReferDINO(mask_reference=...)``) -> FFN. The mask
    of a query is the dot product of its refined embedding with F_seg.

    Args:
        num_layers (int): N_m. Defaults to 3.
        layer_cfg (dict): ``GroundingDinoTransformerDecoderLayer`` arguments.
        with_text_cross_attn (bool): ablation switch. Defaults to True.
        with_deformable_attn (bool): ablation switch (False: no image cross-attention, masks
            come from the dot product of the un-refined-by-image embeddings). Defaults to True.
        with_ref_point_head (bool): own the MLP that embeds the reference boxes into query
            positions. False (default, as the official code) uses the ``query_pos_head`` given
            to :meth:`forward`: the transformer decoder's ``ref_point_head``.
        box_prior (bool): extension, off in the official model: add to each query's mask
            logits ``-s * (u^2 + v^2)``, with (u, v) a pixel's offset from the query's
            predicted box centre in units of the box's half width and half height and ``s`` a
            learnt positive scale (starts at ``box_prior_init``). The dot product with F_seg
            is translation invariant, so it lights up every pixel that looks like the
            target (same colour, a look-alike) unless F_seg learns to encode position; the
            prior ties the mask to the box. Gradients reach the box. Defaults to False.
        box_prior_init (float): initial ``s``. Defaults to 0.5.
    """

    def __init__(self,
                 num_layers: int = 3,
                 layer_cfg: dict = DEFAULT_MASK_LAYER,
                 with_text_cross_attn: bool = True,
                 with_deformable_attn: bool = True,
                 with_ref_point_head: bool = False,
                 box_prior: bool = False,
                 box_prior_init: float = 0.5,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if box_prior and box_prior_init <= 0:
            raise ValueError(f'box_prior_init must be positive, got {box_prior_init}')
        layer_cfg = copy.deepcopy(layer_cfg)
        self.layers = nn.ModuleList([
            SwitchableGroundingDecoderLayer(
                with_text_cross_attn=with_text_cross_attn,
                with_image_cross_attn=with_deformable_attn,
                **copy.deepcopy(layer_cfg)) for _ in range(num_layers)
        ])
        embed_dims = self.layers[0].embed_dims
        self.embed_dims = embed_dims
        self.ref_point_head = MLP(embed_dims * 2, embed_dims, embed_dims, 2) \
            if with_ref_point_head else None
        # log of the prior's scale s (kept positive through exp)
        self.box_prior_log_scale = nn.Parameter(torch.tensor(
            float(box_prior_init)).log()) if box_prior else None

    def init_weights(self) -> None:
        super().init_weights()
        for layer in self.layers:
            layer.cross_attn.init_weights()

    def forward(self,
                queries: Tensor,
                boxes: Tensor,
                mask_feats: Tensor,
                memory_text: Tensor,
                text_attention_mask: Optional[Tensor],
                mask_padding: Optional[Tensor] = None,
                valid_ratio: Optional[Tensor] = None,
                query_pos_head: Optional[nn.Module] = None,
                self_attn_mask: Optional[Tensor] = None) -> Tensor:
        """Predict mask logits.

        Args:
            queries (Tensor): (B, Q, C) object embeddings.
            boxes (Tensor): (B, Q, 4) reference boxes, normalised cxcywh.
            mask_feats (Tensor): (B, C, h, w) F_seg at stride 4.
            memory_text (Tensor): (B, L, C) text features.
            text_attention_mask (Tensor): (B, L) True on padded tokens.
            mask_padding (Tensor, optional): (B, h, w) True on padded pixels.
            valid_ratio (Tensor, optional): (B, 2) valid (w, h) fraction of F_seg.
            query_pos_head (nn.Module, optional): box -> query-position MLP, required when the
                decoder has no ``ref_point_head`` of its own.
            self_attn_mask (Tensor, optional): (Q, Q) bool, True where query i may not attend
                to query j.

        Returns:
            Tensor: (B, Q, h, w) mask logits.
        """
        bsz, _, h, w = mask_feats.shape
        value = mask_feats.flatten(2).transpose(1, 2)
        if valid_ratio is None:
            valid_ratio = mask_feats.new_ones(bsz, 2)
        ref = boxes[:, :, None] * torch.cat([valid_ratio, valid_ratio], -1)[:, None, None]
        pos_head = self.ref_point_head if self.ref_point_head is not None else query_pos_head
        if pos_head is None:
            raise ValueError('GroundingMaskDecoder without its own ref_point_head needs '
                             'query_pos_head')
        query_pos = pos_head(coordinate_to_encoding(ref[:, :, 0]))
        spatial_shapes = torch.as_tensor([[h, w]], device=mask_feats.device, dtype=torch.long)
        level_start = spatial_shapes.new_zeros(1)
        padding = None if mask_padding is None else mask_padding.flatten(1)
        x = queries
        for layer in self.layers:
            x = layer(
                x,
                query_pos=query_pos,
                value=value,
                key_padding_mask=padding,
                spatial_shapes=spatial_shapes,
                level_start_index=level_start,
                reference_points=ref,
                memory_text=memory_text,
                text_attention_mask=text_attention_mask,
                self_attn_mask=self_attn_mask)
        logits = torch.einsum('bqc,bchw->bqhw', x, mask_feats)
        if self.box_prior_log_scale is not None:
            logits = logits + self.box_prior(ref[:, :, 0], h, w)
        return logits

    def box_prior(self, boxes: Tensor, h: int, w: int) -> Tensor:
        """The box prior's logits ``-s * (u^2 + v^2)``.

        Args:
            boxes (Tensor): (B, Q, 4) cxcywh, normalised to the (padded) map.
            h, w (int): map size.

        Returns:
            Tensor: (B, Q, h, w).
        """
        ys = (torch.arange(h, device=boxes.device, dtype=boxes.dtype) + 0.5) / h
        xs = (torch.arange(w, device=boxes.device, dtype=boxes.dtype) + 0.5) / w
        # half sizes of at least one map cell, so that a collapsed box stays finite
        half_w = (boxes[..., 2] / 2).clamp(min=1.0 / w)[..., None]
        half_h = (boxes[..., 3] / 2).clamp(min=1.0 / h)[..., None]
        u = (xs - boxes[..., 0:1]) / half_w
        v = (ys - boxes[..., 1:2]) / half_h
        dist = v.square()[..., :, None] + u.square()[..., None, :]
        return -self.box_prior_log_scale.exp() * dist

    def forward_sets(self, queries: Sequence[Tensor], boxes: Sequence[Tensor], *args,
                     **kwargs) -> List[Tensor]:
        """Mask logits of several query sets (e.g. every decoder layer's and the encoder
        proposals) on the same frames in one pass: the sets are concatenated along the
        queries and a block-diagonal self-attention mask keeps each set to itself, so every
        set gets the masks :meth:`forward` gives it alone, while F_seg is projected once
        instead of once per set (the deformable attention's value projection dominates the
        decoder's cost when the sets are small). The self-attention grows with (sum Q_i)^2,
        so this pays for few queries (CPU, toy configs), not for 900 per set.

        Args:
            queries (list[Tensor]): (B, Q_i, C) per set. boxes (list[Tensor]): (B, Q_i, 4).
            *args, **kwargs: the other :meth:`forward` arguments (shared by the sets).

        Returns:
            list[Tensor]: (B, Q_i, h, w) mask logits per set.
        """
        if len(queries) != len(boxes) or not queries:
            raise ValueError(f'forward_sets needs as many box sets as query sets (at least '
                             f'one), got {len(queries)} and {len(boxes)}')
        sizes = [q.shape[1] for q in queries]
        group = torch.repeat_interleave(
            torch.arange(len(sizes), device=queries[0].device),
            torch.as_tensor(sizes, device=queries[0].device))
        blocked = group[:, None] != group[None, :]
        masks = self.forward(
            torch.cat(list(queries), 1),
            torch.cat(list(boxes), 1),
            *args,
            self_attn_mask=blocked,
            **kwargs)
        return list(masks.split(sizes, dim=1))

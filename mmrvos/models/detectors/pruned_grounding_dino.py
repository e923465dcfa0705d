"""mmdet's Grounding DINO (images, REC / detection) with ReferDINO's query-pruning decoder.

mmdet's ``GroundingDINO._init_layers`` hard-codes its decoder class and its head stacks the
per-layer hidden states into one (layers, B, Q, C) tensor. With pruning every layer keeps a
different number of queries, so this module provides:

* :class:`PrunedGroundingDINO`: builds :class:`PruningGroundingDinoDecoder` and hands the
  head per-layer lists;
* :class:`PrunedGroundingDINOHead`: ``GroundingDINOHead`` over per-layer lists: losses per
  layer (aux ``d{i}.`` + last layer + encoder proposals, Hungarian matching per layer),
  predictions from the last layer only.

**Denoising queries are disabled**: they would have to be pruned together with the matching
queries and their attention mask re-built after every layer; the decoder refuses attention
masks. A ``dn_cfg`` inherited from a stock config is ignored (with a log line).
"""
import copy
from typing import Dict, List, Optional, Tuple

import torch
from mmdet.models.dense_heads import GroundingDINOHead
from mmdet.models.dense_heads.detr_head import DETRHead
from mmdet.models.detectors import GroundingDINO
from mmdet.models.layers.transformer.utils import inverse_sigmoid
from mmdet.registry import MODELS
from mmengine.logging import print_log
from torch import Tensor

from ..layers.pruning_decoder import PruningDecoderMixin

_DUMMY_DN = dict(
    label_noise_scale=0.5, box_noise_scale=1.0, group_cfg=dict(dynamic=True, num_dn_queries=1))


@MODELS.register_module()
class PrunedGroundingDINOHead(GroundingDINOHead):
    """``GroundingDINOHead`` whose decoder outputs are per-layer lists of different sizes."""

    def forward(self, hidden_states: List[Tensor], references: List[Tensor], memory_text: Tensor,
                text_token_mask: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
        """Per-layer class scores and boxes.

        Args:
            hidden_states (list[Tensor]): layer ``l``: (B, Q_l, C).
            references (list[Tensor]): layer ``l``: (B, Q_l, 4) input reference boxes of the
                kept queries (cxcywh in [0, 1]).
            memory_text (Tensor): (B, L, C). text_token_mask (Tensor): (B, L) True = valid.

        Returns:
            tuple: lists of (B, Q_l, max_text_len) scores and (B, Q_l, 4) boxes.
        """
        scores, boxes = [], []
        for lid, (hidden, ref) in enumerate(zip(hidden_states, references)):
            scores.append(self.cls_branches[lid](hidden, memory_text, text_token_mask))
            boxes.append((self.reg_branches[lid](hidden) + inverse_sigmoid(ref)).sigmoid())
        return scores, boxes

    def _predict_by_feat_single(self,
                                cls_score: Tensor,
                                bbox_pred: Tensor,
                                token_positive_maps: Optional[dict],
                                img_meta: dict,
                                rescale: bool = True):
        """mmdet's per-image prediction with ``max_per_img`` capped at what the last
        (pruned) layer can give: Q_L queries x entities (e.g. 15 at 900 queries, drop 0.5)."""
        entities = len(token_positive_maps) if token_positive_maps is not None else 1
        original = self.test_cfg.get('max_per_img', len(cls_score))
        self.test_cfg['max_per_img'] = min(original, len(cls_score) * max(entities, 1))
        try:
            return super()._predict_by_feat_single(cls_score, bbox_pred, token_positive_maps,
                                                   img_meta, rescale)
        finally:
            self.test_cfg['max_per_img'] = original

    def loss_by_feat(self,
                     all_layers_cls_scores: List[Tensor],
                     all_layers_bbox_preds: List[Tensor],
                     enc_cls_scores: Tensor,
                     enc_bbox_preds: Tensor,
                     batch_gt_instances,
                     batch_img_metas,
                     dn_meta: Optional[Dict[str, int]] = None,
                     batch_gt_instances_ignore=None) -> Dict[str, Tensor]:
        """Matching losses per decoder layer (each layer matched on its own queries) and for
        the encoder proposals; no denoising part."""
        if dn_meta is not None:
            raise ValueError('PrunedGroundingDINOHead has no denoising queries')
        losses = DETRHead.loss_by_feat(self, all_layers_cls_scores, all_layers_bbox_preds,
                                       batch_gt_instances, batch_img_metas,
                                       batch_gt_instances_ignore)
        if enc_cls_scores is not None:
            cls, box, iou = self.loss_by_feat_single(
                enc_cls_scores,
                enc_bbox_preds,
                batch_gt_instances=batch_gt_instances,
                batch_img_metas=batch_img_metas)
            losses.update(enc_loss_cls=cls, enc_loss_bbox=box, enc_loss_iou=iou)
        return losses


@MODELS.register_module()
class PrunedGroundingDINO(PruningDecoderMixin, GroundingDINO):
    """mmdet ``GroundingDINO`` with confidence-aware query pruning in the decoder.

    A drop-in for image configs: set ``type='PrunedGroundingDINO'`` and optionally
    ``decoder.drop_rate`` (default 0.5) / ``decoder.prune_mode`` ('confidence' | 'random').
    A ``GroundingDINOHead`` in the config is replaced by :class:`PrunedGroundingDINOHead`
    (same arguments and weights). Denoising is disabled (see the module docstring).
    Checkpoints of the stock detector load unchanged (the decoder and head have the same
    parameters).
    """

    def __init__(self, *args, dn_cfg: Optional[dict] = None, **kwargs) -> None:
        if dn_cfg is not None:
            print_log(
                'PrunedGroundingDINO: denoising queries cannot be combined with query '
                'pruning; dn_cfg is ignored',
                logger='current')
        head = kwargs.get('bbox_head')
        if head is not None and head.get('type') in ('GroundingDINOHead', GroundingDINOHead):
            kwargs['bbox_head'] = {**head, 'type': 'PrunedGroundingDINOHead'}
        super().__init__(*args, dn_cfg=copy.deepcopy(_DUMMY_DN), **kwargs)
        del self.dn_query_generator
        if not isinstance(self.bbox_head, PrunedGroundingDINOHead):
            raise TypeError('PrunedGroundingDINO needs a PrunedGroundingDINOHead, got '
                            f'{type(self.bbox_head).__name__}')

    def pre_decoder(self,
                    memory: Tensor,
                    memory_mask: Tensor,
                    spatial_shapes: Tensor,
                    memory_text: Tensor,
                    text_token_mask: Tensor,
                    batch_data_samples=None) -> Tuple[Dict, Dict]:
        """Two-stage query selection (as mmdet's) without denoising queries.

        Returns:
            tuple: decoder inputs (``query`` (B, Q, C), ``reference_points`` (B, Q, 4), ...)
            and head inputs (encoder top-k scores (B, Q, L) and boxes (B, Q, 4) in training,
            ``memory_text``, ``text_token_mask``).
        """
        bsz = memory.shape[0]
        layer = self.decoder.num_layers
        output_memory, output_proposals = self.gen_encoder_output_proposals(
            memory, memory_mask, spatial_shapes)
        enc_cls = self.bbox_head.cls_branches[layer](output_memory, memory_text, text_token_mask)
        enc_coord_unact = self.bbox_head.reg_branches[layer](output_memory) + output_proposals
        topk = torch.topk(enc_cls.max(-1)[0], k=self.num_queries, dim=1)[1]
        topk_score = torch.gather(enc_cls, 1, topk[..., None].expand(-1, -1, enc_cls.shape[-1]))
        topk_coords_unact = torch.gather(enc_coord_unact, 1, topk[..., None].expand(-1, -1, 4))
        query = self.query_embedding.weight[None].expand(bsz, -1, -1)
        decoder_inputs = dict(
            query=query,
            memory=memory,
            reference_points=topk_coords_unact.detach().sigmoid(),
            dn_mask=None,
            memory_text=memory_text,
            text_attention_mask=~text_token_mask)
        head_inputs = dict(
            enc_outputs_class=topk_score,
            enc_outputs_coord=topk_coords_unact.sigmoid(),
            dn_meta=None) if self.training else dict()
        head_inputs.update(memory_text=memory_text, text_token_mask=text_token_mask)
        return decoder_inputs, head_inputs

    def forward_decoder(self,
                        query: Tensor,
                        memory: Tensor,
                        memory_mask: Tensor,
                        reference_points: Tensor,
                        spatial_shapes: Tensor,
                        level_start_index: Tensor,
                        valid_ratios: Tensor,
                        dn_mask: Optional[Tensor] = None,
                        memory_text: Tensor = None,
                        text_attention_mask: Tensor = None,
                        **kwargs) -> Dict:
        """Pruning decoder.

        Returns:
            dict: ``hidden_states`` and ``references``, per-layer lists ((B, Q_l, C) and the
            (B, Q_l, 4) input references of the kept queries).
        """
        if dn_mask is not None:
            raise ValueError('PrunedGroundingDINO does not support denoising queries')
        out = self.decoder(
            query=query,
            value=memory,
            key_padding_mask=memory_mask,
            self_attn_mask=None,
            reference_points=reference_points,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios,
            reg_branches=self.bbox_head.reg_branches,
            cls_branches=self.bbox_head.cls_branches,
            memory_text=memory_text,
            text_attention_mask=text_attention_mask)
        return dict(hidden_states=out['hidden_states'], references=out['references'])

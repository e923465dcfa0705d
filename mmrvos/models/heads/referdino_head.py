"""ReferDINO head: per-query class/box/mask prediction; targets, sequence losses and
prediction selection from :class:`BaseRVOSHead`."""
from typing import Dict, List, Optional, Sequence

import torch
from mmdet.models.dense_heads import GroundingDINOHead
from mmdet.models.layers.transformer.utils import inverse_sigmoid
from mmdet.registry import MODELS
from torch import Tensor, nn

from .base_rvos_head import BaseRVOSHead


@MODELS.register_module()
class ReferDINOHead(BaseRVOSHead, GroundingDINOHead):
    """Grounding DINO head for referring segmentation of video clips.

    * class logit of a query = max over the valid text tokens of its contrastive logits;
    * box = ``sigmoid(reg_branch(h) + inverse_sigmoid(reference))``;
    * mask = :class:`GroundingMaskDecoder` (placed by the boxes the detector passes: the
      decoder layer's input reference, or the predicted box, ``ReferDINO.mask_reference``);
    * targets, losses (per decoder layer and for the encoder proposals; the positive sequence
      chosen by ``train_cfg.assigner``, a :class:`SequenceHungarianAssigner`) and the
      selection and post-processing of the predictions (``test_cfg``): :class:`BaseRVOSHead`.

    Args:
        mask_decoder (dict): mask decoder config; None for a box-only model.
        loss_mask (dict): per-pixel loss (mmdet ``FocalLoss`` with ``reduction='none'``).
        loss_dice (dict): mmdet ``DiceLoss``. loss_proj (dict): :class:`ProjectionLoss`.
        share_decoder_reg_branch (bool): one box MLP shared by all decoder layers (the official
            ``dec_pred_bbox_embed_share``); the encoder proposals keep their own. Defaults to
            True.
        token_reduce (str): how a query's per-token contrastive logits become its class logit:
            ``'max'`` over the valid tokens (the official rule, default) or their ``'mean'``
            (the query against the average token: every word counts, not only the best
            matching one).
        mask_loss_stride (int): stride (4, 2 or 1) of the mask losses; below 4 the stride-4
            logits are upsampled to it (see :meth:`BaseRVOSHead.get_targets`). Defaults to 4.
        **kwargs: ``GroundingDINOHead`` arguments (``contrastive_cfg``, ``loss_cls``,
            ``loss_bbox``, ``loss_iou``, ``train_cfg``, ``test_cfg`` ...).
    """

    def __init__(self,
                 mask_decoder: Optional[dict] = dict(type='GroundingMaskDecoder'),
                 loss_mask: dict = dict(
                     type='FocalLoss',
                     use_sigmoid=True,
                     gamma=2.0,
                     alpha=0.25,
                     reduction='none',
                     loss_weight=5.0),
                 loss_dice: dict = dict(
                     type='DiceLoss',
                     use_sigmoid=True,
                     naive_dice=True,
                     eps=1.0,
                     reduction='mean',
                     loss_weight=5.0),
                 loss_proj: Optional[dict] = dict(
                     type='ProjectionLoss', reduction='sum', loss_weight=5.0),
                 share_decoder_reg_branch: bool = True,
                 token_reduce: str = 'max',
                 mask_loss_stride: int = 4,
                 **kwargs) -> None:
        if token_reduce not in ('max', 'mean'):
            raise ValueError(f"token_reduce must be 'max' or 'mean', got {token_reduce!r}")
        if mask_loss_stride not in (1, 2, 4):
            raise ValueError(f'mask_loss_stride must be 1, 2 or 4, got {mask_loss_stride!r}')
        self.mask_loss_stride = mask_loss_stride
        self.share_decoder_reg_branch = share_decoder_reg_branch
        self.token_reduce = token_reduce
        super().__init__(**kwargs)
        self.mask_decoder = MODELS.build(mask_decoder) if mask_decoder else None
        self.loss_mask = MODELS.build(loss_mask) if mask_decoder else None
        self.loss_dice = MODELS.build(loss_dice) if mask_decoder else None
        self.loss_proj = MODELS.build(loss_proj) if (mask_decoder and loss_proj) else None

    def _init_layers(self) -> None:
        super()._init_layers()
        if self.share_decoder_reg_branch:
            num_dec = self.num_pred_layer - 1 if self.as_two_stage else self.num_pred_layer
            shared = self.reg_branches[0]
            self.reg_branches = torch.nn.ModuleList([shared] * num_dec +
                                                    list(self.reg_branches[num_dec:]))

    # ------------------------------------------------------------------ prediction
    def class_logits(self, layer_id: int, hidden: Tensor, memory_text: Tensor,
                     text_token_mask: Tensor) -> Tensor:
        """(B, Q) class logits = max (or mean, ``token_reduce``) over the valid tokens of the
        contrastive logits.

        Args:
            layer_id (int): decoder layer; ``num_layers`` for the encoder proposals.
            hidden (Tensor): (B, Q, C). memory_text (Tensor): (B, L, C).
            text_token_mask (Tensor): (B, L) True on valid tokens.
        """
        logits = self.cls_branches[layer_id](hidden, memory_text, text_token_mask)
        if self.token_reduce == 'max':
            return logits.max(-1).values
        valid = text_token_mask[:, None, :]  # (B, 1, L)
        logits = logits[..., :valid.shape[-1]].masked_fill(~valid, 0.0)
        return logits.sum(-1) / valid.sum(-1).clamp_min(1)

    def boxes(self, layer_id: int, hidden: Tensor, reference: Tensor) -> Tensor:
        """(B, Q, 4) normalised cxcywh boxes from (B, Q, C) embeddings and (B, Q, 4) refs."""
        return (self.reg_branches[layer_id](hidden) +
                inverse_sigmoid(reference, eps=1e-3)).sigmoid()

    def mask_logits(self, hidden: Tensor, boxes: Tensor, frames: Dict[str, Tensor],
                    query_pos_head: nn.Module) -> Tensor:
        """(B, Q, h, w) mask logits of (B, Q, C) embeddings placed by (B, Q, 4) boxes.

        Args:
            frames (dict): the mask decoder's inputs of the B frames (``ReferDINO.encode_frames``):
                ``mask_feats`` (B, C, h, w) F_seg, ``memory_text`` (B, L, C) fused text,
                ``text_token_mask`` (B, L) True on valid tokens, ``mask_padding`` (B, h, w) or
                None, ``valid_ratio`` (B, 2).
            query_pos_head (nn.Module): the decoder's box -> query position MLP.
        """
        return self.mask_decoder(
            hidden, boxes, *self._mask_inputs(frames), query_pos_head=query_pos_head)

    def mask_logits_of_sets(self,
                            sets: Sequence[tuple],
                            frames: Dict[str, Tensor],
                            query_pos_head: nn.Module,
                            in_one_pass: bool = False) -> List[Tensor]:
        """:meth:`mask_logits` of several (embeddings (B, Q_i, C), boxes (B, Q_i, 4)) sets on the
        same frames: one mask-decoder pass per set, or with ``in_one_pass`` one for all of them
        (same result, see :meth:`GroundingMaskDecoder.forward_sets`)."""
        if not sets:
            return []
        if not in_one_pass:
            return [
                self.mask_logits(hidden, boxes, frames, query_pos_head) for hidden, boxes in sets
            ]
        hidden, boxes = zip(*sets)
        return self.mask_decoder.forward_sets(
            hidden, boxes, *self._mask_inputs(frames), query_pos_head=query_pos_head)

    @staticmethod
    def _mask_inputs(frames: Dict[str, Tensor]) -> tuple:
        """F_seg, text, text padding, pixel padding, valid ratio."""
        return (frames['mask_feats'], frames['memory_text'], ~frames['text_token_mask'],
                frames['mask_padding'], frames['valid_ratio'])

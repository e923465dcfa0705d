"""ReferFormer head: per-layer class/box branches, dynamic mask head, sequence losses."""
from typing import Optional

import torch
from mmdet.models.dense_heads import DeformableDETRHead
from mmdet.models.layers.transformer.utils import inverse_sigmoid
from mmdet.registry import MODELS
from torch import Tensor

from mmrvos.models.heads import BaseRVOSHead


@MODELS.register_module()
class ReferFormerHead(BaseRVOSHead, DeformableDETRHead):
    """Deformable-DETR head of ReferFormer (binary 'referred' class, box refinement) with a
    CondInst dynamic mask head (:class:`mmrvos.models.heads.DynamicMaskHead`).

    Targets, sequence losses and prediction selection are mmrvos' (:class:`BaseRVOSHead`): one
    positive query sequence per clip chosen by a :class:`SequenceHungarianAssigner` on the
    frame-averaged cost; focal class loss on every query; L1 + GIoU, mask focal + Dice on the
    positive sequence over the frames where the target is visible, with stride-4 logits against
    stride-4 GT (ReferFormer's protocol, ``mask_loss_stride`` 4).

    Args:
        mask_head (dict): dynamic mask head config (stored as ``mask_decoder``).
        loss_mask (dict): per-pixel focal loss (``reduction='none'``). loss_dice (dict): Dice.
        loss_proj (dict, optional): projection loss (ReferFormer has none).
        **kwargs: ``DeformableDETRHead`` arguments (``test_cfg``: see :class:`BaseRVOSHead`).
    """

    def __init__(self,
                 mask_head: dict = dict(
                     type='RVOSDynamicMaskHead', reduced_channels=None, controller_layers=3),
                 loss_mask: dict = dict(
                     type='FocalLoss',
                     use_sigmoid=True,
                     gamma=2.0,
                     alpha=0.25,
                     reduction='none',
                     loss_weight=2.0),
                 loss_dice: dict = dict(
                     type='DiceLoss',
                     use_sigmoid=True,
                     naive_dice=True,
                     eps=1.0,
                     reduction='mean',
                     loss_weight=5.0),
                 loss_proj: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.mask_decoder = MODELS.build(mask_head)
        self.loss_mask = MODELS.build(loss_mask)
        self.loss_dice = MODELS.build(loss_dice)
        self.loss_proj = MODELS.build(loss_proj) if loss_proj else None

    def class_logits(self, layer_id: int, hidden: Tensor) -> Tensor:
        """(B, Q) logits of 'is the referred object' from (B, Q, C) embeddings."""
        return self.cls_branches[layer_id](hidden)[..., 0]

    def boxes(self, layer_id: int, hidden: Tensor, reference: Tensor) -> Tensor:
        """(B, Q, 4) normalised cxcywh boxes from (B, Q, C) embeddings and the layer's input
        reference (B, Q, 2) points or (B, Q, 4) boxes."""
        delta = self.reg_branches[layer_id](hidden)
        ref = inverse_sigmoid(reference, eps=1e-5)
        if ref.shape[-1] == 4:
            return (delta + ref).sigmoid()
        return torch.cat([delta[..., :2] + ref, delta[..., 2:]], -1).sigmoid()

"""ReferDINO head: per-query class/box/mask prediction and the sequence-level losses."""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.dense_heads import GroundingDINOHead
from mmdet.models.layers.transformer.utils import inverse_sigmoid
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmdet.utils import reduce_mean
from mmengine.structures import InstanceData
from torch import Tensor


@MODELS.register_module()
class ReferDINOHead(GroundingDINOHead):
    """Grounding DINO head for referring segmentation of video clips.

    * class logit of a query = max over the valid text tokens of its contrastive logits;
    * box = ``sigmoid(reg_branch(h) + inverse_sigmoid(reference))``;
    * mask = :class:`GroundingMaskDecoder` (placed by the boxes the detector passes: the
      decoder layer's input reference, or the predicted box, ``ReferDINO.mask_reference``);
    * losses (per decoder layer and for the encoder proposals): focal class loss on every query
      of every annotated frame, and on the one positive query sequence per clip (chosen by
      ``train_cfg.assigner``, a :class:`SequenceHungarianAssigner`) L1 + GIoU on boxes and
      focal + Dice + projection losses on masks, over the frames where the target is visible.
      Frames that carry no annotation for the target contribute nothing.

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
        **kwargs: ``GroundingDINOHead`` arguments (``contrastive_cfg``, ``loss_cls``,
            ``loss_bbox``, ``loss_iou``, ``train_cfg`` ...).
    """

    def __init__(self,
                 mask_decoder: Optional[dict] = dict(type='GroundingMaskDecoder'),
                 loss_mask: dict = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0,
                                        alpha=0.25, reduction='none', loss_weight=5.0),
                 loss_dice: dict = dict(type='DiceLoss', use_sigmoid=True, naive_dice=True,
                                        eps=1.0, reduction='mean', loss_weight=5.0),
                 loss_proj: Optional[dict] = dict(type='ProjectionLoss', reduction='sum',
                                                  loss_weight=5.0),
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
            self.reg_branches = torch.nn.ModuleList(
                [shared] * num_dec + list(self.reg_branches[num_dec:]))

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

    # ------------------------------------------------------------------ losses
    def loss_by_outputs(self, outputs: List[Dict[str, Tensor]], targets: Dict[str, Tensor],
                        img_shape: Tuple[int, int]) -> Dict[str, Tensor]:
        """Losses of every prediction set.

        Args:
            outputs (list[dict]): one dict per prediction set, decoder layers first (the last
                layer's losses carry no prefix, layer ``i`` gets ``d{i}.``) and optionally the
                encoder proposals last with ``'name': 'enc'``. Each has ``cls`` (N, T, Q)
                logits, ``boxes`` (N, T, Q, 4) normalised cxcywh and ``masks`` (N, T, Q, h, w)
                logits or None.
            targets (dict): ``boxes`` (N, T, 4) normalised cxcywh, ``masks`` (N, T, h, w)
                binary, ``valid`` (N, T) bool, ``annotated`` (N, T) bool; with
                ``mask_loss_stride`` < 4 also ``loss_masks`` (N, T, h * 4 / s, w * 4 / s), the
                GT at the loss stride s.
            img_shape (tuple): (H, W) of the (unpadded) frames, for pixel-space match costs.
        """
        losses = {}
        dec = [o for o in outputs if o.get('name') != 'enc']
        for i, out in enumerate(outputs):
            if out.get('name') == 'enc':
                prefix = 'enc_'
            elif i == len(dec) - 1:
                prefix = ''
            else:
                prefix = f'd{i}.'
            for k, v in self.loss_single(out, targets, img_shape).items():
                losses[prefix + k] = v
        return losses

    def assign(self, out: Dict[str, Tensor], targets: Dict[str, Tensor],
               img_shape: Tuple[int, int]) -> Tensor:
        """Index (N,) of the positive query sequence of every clip."""
        h, w = img_shape
        scale = out['boxes'].new_tensor([w, h, w, h])
        meta = dict(img_shape=img_shape)
        index = []
        for n in range(out['cls'].shape[0]):
            preds, gts = [], []
            for t in range(out['cls'].shape[1]):
                p = InstanceData(scores=out['cls'][n, t][:, None],
                                 bboxes=bbox_cxcywh_to_xyxy(out['boxes'][n, t]) * scale)
                g = InstanceData(labels=out['cls'].new_zeros(1, dtype=torch.long),
                                 bboxes=bbox_cxcywh_to_xyxy(targets['boxes'][n, t])[None] * scale)
                if out.get('masks') is not None:
                    p.masks = out['masks'][n, t]
                    g.masks = targets['masks'][n, t][None]
                preds.append(p)
                gts.append(g)
            q_idx, _ = self.assigner.assign(preds, gts, [meta] * len(preds),
                                            targets['valid'][n][:, None])
            index.append(q_idx[0])
        return torch.stack(index)

    def loss_single(self, out: Dict[str, Tensor], targets: Dict[str, Tensor],
                    img_shape: Tuple[int, int]) -> Dict[str, Tensor]:
        """Losses of one prediction set (see :meth:`loss_by_outputs`)."""
        cls = out['cls']
        n, t, q = cls.shape
        valid, annotated = targets['valid'], targets['annotated']
        pos = self.assign(out, targets, img_shape)  # (N,)
        clip_ids = torch.arange(n, device=cls.device)

        num_pos = reduce_mean(valid.float().sum()).clamp_min(1.0).item()
        cls_target = torch.zeros_like(cls)
        cls_target[clip_ids, :, pos] = valid.float()
        weight = annotated[..., None].expand(n, t, q).float()
        loss_cls = self.loss_cls(cls.reshape(-1, 1), cls_target.reshape(-1, 1),
                                 weight.reshape(-1), avg_factor=num_pos)
        losses = dict(loss_cls=loss_cls)

        boxes = out['boxes'][clip_ids, :, pos][valid]  # (P, 4)
        gt_boxes = targets['boxes'][valid]
        h, w = img_shape
        scale = boxes.new_tensor([w, h, w, h])
        losses['loss_bbox'] = self.loss_bbox(boxes, gt_boxes, avg_factor=num_pos)
        losses['loss_iou'] = self.loss_iou(bbox_cxcywh_to_xyxy(boxes) * scale,
                                           bbox_cxcywh_to_xyxy(gt_boxes) * scale,
                                           avg_factor=num_pos)
        if out.get('masks') is not None and self.mask_decoder is not None:
            masks = out['masks'][clip_ids, :, pos][valid]  # (P, h, w)
            if self.mask_loss_stride == 4:
                gt_masks = targets['masks'][valid].float()
            else:  # (P, h', w') at the loss stride, logits upsampled as at inference
                gt_masks = targets['loss_masks'][valid].float()
                masks = F.interpolate(masks[:, None], size=gt_masks.shape[-2:],
                                      mode='bilinear', align_corners=False)[:, 0]
            pixel = self.loss_mask(masks.flatten(1), gt_masks.flatten(1))
            losses['loss_mask'] = pixel.mean(1).sum() / num_pos
            losses['loss_dice'] = self.loss_dice(masks, gt_masks, avg_factor=num_pos) \
                if len(masks) else masks.sum()
            if self.loss_proj is not None:
                losses['loss_proj'] = self.loss_proj(masks, gt_masks) / num_pos \
                    if len(masks) else masks.sum()
        return losses

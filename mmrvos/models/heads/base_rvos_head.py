"""What the heads of the RVOS detectors share, as mmdet gives it to a head: the clip targets
(``get_targets``), the sequence losses (``loss_by_feat``) and the selection and
post-processing of the predictions (``select_queries``, ``predict_by_feat``).

Shapes: N clips, T frames, Q queries, k selected query sequences, (h, w) the stride-4 mask
size of the padded input, (H, W) the original frame size.
"""
from typing import Dict, Iterator, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.structures import TrackDataSample
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from mmdet.utils import reduce_mean
from mmengine.structures import InstanceData
from torch import Tensor

#: the test_cfg keys of the head and their defaults
RVOS_HEAD_TEST_CFG = dict(select='top1', score_thr=0.2, mask_thr=0.5, mask_rescale='bilinear')
SELECT_MODES = ('top1', 'threshold', 'all')
MASK_RESCALES = ('bilinear', 'threshold_nearest')


class BaseRVOSHead:
    """Targets, sequence losses and prediction selection of a referring-segmentation head.

    A mixin placed before the mmdet head class (``class ReferDINOHead(BaseRVOSHead,
    GroundingDINOHead)``). The subclass provides ``assigner`` (a
    :class:`SequenceHungarianAssigner`), ``loss_cls``, ``loss_bbox``, ``loss_iou``,
    ``mask_decoder`` (None for a box-only head), ``loss_mask`` (per-pixel, ``reduction='none'``),
    ``loss_dice``, ``loss_proj`` (or None) and ``mask_loss_stride`` (4, 2 or 1).

    Training: one positive query sequence per clip (the assigner, over the frames where the
    target is visible); focal class loss on every query of every annotated frame; L1 + GIoU on
    boxes and focal + Dice (+ projection) on masks of the positive sequence where the target is
    visible. Frames without an annotation of the target contribute nothing.

    Inference: the query sequences are ranked by their frame-averaged score; ``test_cfg``
    (shared with the detector, whose ``test_cfg`` is this dict):

    * ``select``: ``'top1'`` (default) the best sequence; ``'threshold'`` every sequence whose
      mean score exceeds ``score_thr`` (0.2), merged into one instance per frame (top-1 when
      none does); ``'all'`` every sequence, best first, one instance each.
    * ``mask_thr`` (0.5): probability threshold of the masks.
    * ``mask_rescale``: ``'bilinear'`` (default) stride-4 logits upsampled to the original size,
      then thresholded (through the padded size when the input is padded); ``'threshold_nearest'``
      (the official A2D / JHMDB post-processing) upsampled to the padded input size,
      thresholded, cropped, nearest to the original size.
    """

    mask_loss_stride = 4

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cfg = {**RVOS_HEAD_TEST_CFG, **(self.test_cfg or {})}
        if cfg['select'] not in SELECT_MODES:
            raise ValueError("test_cfg.select must be 'top1', 'threshold' or 'all', got "
                             f"{cfg['select']!r}")
        if cfg['mask_rescale'] not in MASK_RESCALES:
            raise ValueError("test_cfg.mask_rescale must be 'bilinear' or "
                             f"'threshold_nearest', got {cfg['mask_rescale']!r}")
        self.test_cfg = cfg

    # ------------------------------------------------------------------ targets
    def get_targets(self, batch_data_samples: List[TrackDataSample],
                    mask_size: Tuple[int, int]) -> Dict[str, Tensor]:
        """Targets of the clips (the first GT instance of every frame is the referred object).

        GT masks are padded to the batch input shape and subsampled at stride 4 starting at
        pixel 2 (as the official code) to the (h, w) = ``mask_size`` of the predicted masks.
        With a finer ``mask_loss_stride`` s (2 or 1) they are also subsampled at stride s,
        starting at pixel s // 2.

        Returns:
            dict: ``boxes`` (N, T, 4) normalised cxcywh, ``masks`` (N, T, h, w) float,
            ``valid`` (N, T) bool (target visible), ``annotated`` (N, T) bool, and with a finer
            loss stride ``loss_masks`` (N, T, 4h / s, 4w / s) float.
        """
        boxes, masks, valid, annotated, loss_masks = [], [], [], [], []
        h, w = mask_size
        stride = self.mask_loss_stride
        for clip in batch_data_samples:
            for frame in clip.video_data_samples:
                gt = frame.gt_instances
                img_h, img_w = frame.img_shape
                bbox = torch.as_tensor(gt.bboxes, dtype=torch.float32).reshape(-1, 4)[:1]
                bbox = bbox / bbox.new_tensor([img_w, img_h, img_w, img_h])
                boxes.append(bbox_xyxy_to_cxcywh(bbox)[0])
                m = gt.masks
                m = m.to_tensor(torch.float32, bbox.device) if hasattr(m, 'to_tensor') \
                    else torch.as_tensor(m, dtype=torch.float32)
                full = m.new_zeros(h * 4, w * 4)
                mh, mw = min(m.shape[-2], h * 4), min(m.shape[-1], w * 4)
                full[:mh, :mw] = m[0, :mh, :mw]
                masks.append(full[2::4, 2::4])
                if stride != 4:
                    loss_masks.append(full[stride // 2::stride, stride // 2::stride])
                valid.append(bool(torch.as_tensor(gt.valid).reshape(-1)[0]))
                annotated.append(
                    bool(torch.as_tensor(gt.annotated).reshape(-1)[0]) if 'annotated' in
                    gt else True)
        n = len(batch_data_samples)
        device = next(self.parameters()).device
        targets = dict(
            boxes=torch.stack(boxes).to(device).reshape(n, -1, 4),
            masks=torch.stack(masks).to(device).reshape(n, -1, h, w),
            valid=torch.tensor(valid, device=device).reshape(n, -1),
            annotated=torch.tensor(annotated, device=device).reshape(n, -1))
        if loss_masks:
            targets['loss_masks'] = torch.stack(loss_masks).to(device).reshape(
                n, -1, *loss_masks[0].shape)
        return targets

    # ------------------------------------------------------------------ losses
    def loss_by_feat(self, outputs: List[Dict[str,
                                              Tensor]], batch_data_samples: List[TrackDataSample],
                     mask_size: Tuple[int, int]) -> Dict[str, Tensor]:
        """Losses of every prediction set of a batch of clips.

        Args:
            outputs (list[dict]): one dict per prediction set, decoder layers first (the last
                layer's losses carry no prefix, layer ``i`` gets ``d{i}.``) and optionally the
                encoder proposals last with ``'name': 'enc'`` (prefix ``enc_``). Each has
                ``cls`` (N, T, Q) logits, ``boxes`` (N, T, Q, 4) normalised cxcywh and
                ``masks`` (N, T, Q, h, w) logits or None.
            batch_data_samples (list[TrackDataSample]): the N clips with ``gt_instances`` per
                frame (see :meth:`get_targets`).
            mask_size (tuple): (h, w) of the predicted masks (the padded input / 4).
        """
        targets = self.get_targets(batch_data_samples, mask_size)
        img_shape = batch_data_samples[0].video_data_samples[0].img_shape
        losses = {}
        dec = [o for o in outputs if o.get('name') != 'enc']
        for i, out in enumerate(outputs):
            if out.get('name') == 'enc':
                prefix = 'enc_'
            elif i == len(dec) - 1:
                prefix = ''
            else:
                prefix = f'd{i}.'
            for k, v in self.loss_by_feat_single(out, targets, img_shape).items():
                losses[prefix + k] = v
        return losses

    def assign(self, out: Dict[str, Tensor], targets: Dict[str, Tensor],
               img_shape: Tuple[int, int]) -> Tensor:
        """Index (N,) of the positive query sequence of every clip.

        Args:
            out (dict): one prediction set (see :meth:`loss_by_feat`).
            targets (dict): :meth:`get_targets`.
            img_shape (tuple): (H, W) of the unpadded frames, for pixel-space match costs.
        """
        h, w = img_shape
        scale = out['boxes'].new_tensor([w, h, w, h])
        meta = dict(img_shape=img_shape)
        index = []
        for n in range(out['cls'].shape[0]):
            preds, gts = [], []
            for t in range(out['cls'].shape[1]):
                p = InstanceData(
                    scores=out['cls'][n, t][:, None],
                    bboxes=bbox_cxcywh_to_xyxy(out['boxes'][n, t]) * scale)
                g = InstanceData(
                    labels=out['cls'].new_zeros(1, dtype=torch.long),
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

    def loss_by_feat_single(self, out: Dict[str, Tensor], targets: Dict[str, Tensor],
                            img_shape: Tuple[int, int]) -> Dict[str, Tensor]:
        """Losses of one prediction set (see :meth:`loss_by_feat`, :meth:`assign`)."""
        cls = out['cls']
        n, t, q = cls.shape
        valid, annotated = targets['valid'], targets['annotated']
        pos = self.assign(out, targets, img_shape)  # (N,)
        clip_ids = torch.arange(n, device=cls.device)

        num_pos = reduce_mean(valid.float().sum()).clamp_min(1.0).item()
        cls_target = torch.zeros_like(cls)
        cls_target[clip_ids, :, pos] = valid.float()
        weight = annotated[..., None].expand(n, t, q).float()
        loss_cls = self.loss_cls(
            cls.reshape(-1, 1), cls_target.reshape(-1, 1), weight.reshape(-1), avg_factor=num_pos)
        losses = dict(loss_cls=loss_cls)

        boxes = out['boxes'][clip_ids, :, pos][valid]  # (P, 4)
        gt_boxes = targets['boxes'][valid]
        h, w = img_shape
        scale = boxes.new_tensor([w, h, w, h])
        losses['loss_bbox'] = self.loss_bbox(boxes, gt_boxes, avg_factor=num_pos)
        losses['loss_iou'] = self.loss_iou(
            bbox_cxcywh_to_xyxy(boxes) * scale,
            bbox_cxcywh_to_xyxy(gt_boxes) * scale,
            avg_factor=num_pos)
        if out.get('masks') is not None and self.mask_decoder is not None:
            masks = out['masks'][clip_ids, :, pos][valid]  # (P, h, w)
            if self.mask_loss_stride == 4:
                gt_masks = targets['masks'][valid].float()
            else:  # (P, h', w') at the loss stride, logits upsampled as at inference
                gt_masks = targets['loss_masks'][valid].float()
                masks = F.interpolate(
                    masks[:, None], size=gt_masks.shape[-2:], mode='bilinear',
                    align_corners=False)[:, 0]
            pixel = self.loss_mask(masks.flatten(1), gt_masks.flatten(1))
            losses['loss_mask'] = pixel.mean(1).sum() / num_pos
            losses['loss_dice'] = self.loss_dice(masks, gt_masks, avg_factor=num_pos) \
                if len(masks) else masks.sum()
            if self.loss_proj is not None:
                losses['loss_proj'] = self.loss_proj(masks, gt_masks) / num_pos \
                    if len(masks) else masks.sum()
        return losses

    # ------------------------------------------------------------------ prediction
    def select_queries(self, cls_logits: Tensor) -> Tensor:
        """Indices (k,) of the selected query sequences (best first) from (T, Q) logits,
        ranked by their mean score over the T frames (``test_cfg.select``)."""
        scores = cls_logits.sigmoid().mean(0)
        mode = self.test_cfg['select']
        if mode == 'all':
            return scores.argsort(descending=True)
        if mode == 'threshold':
            keep = (scores > self.test_cfg['score_thr']).nonzero()[:, 0]
            if len(keep):
                return keep[scores[keep].argsort(descending=True)]
        elif mode != 'top1':
            raise ValueError(f"test_cfg.select must be 'top1', 'threshold' or 'all', got {mode!r}")
        return scores.argmax()[None]

    def predict_by_feat(self, mask_logits: Tensor, boxes: Tensor, cls_logits: Tensor,
                        frame_samples: Sequence) -> Iterator[InstanceData]:
        """Per-frame results of the selected query sequences (:meth:`select_queries`).

        Args:
            mask_logits (Tensor): (T, k, h, w) stride-4 logits of the padded input.
            boxes (Tensor): (T, k, 4) normalised cxcywh. cls_logits (Tensor): (T, k).
            frame_samples (Sequence[DetDataSample]): T samples (``batch_input_shape``,
                ``img_shape``, ``ori_shape``).

        Yields:
            InstanceData: per frame, in order, ``masks`` (m, H, W) bool at the original size,
            ``bboxes`` (m, 4) xyxy in original pixels, ``scores`` (m,), ``labels`` (m,) zeros;
            m = k with ``select='all'``, else 1 (the selection merged). Each frame is computed
            when the iterator reaches it, so a caller that streams them holds one frame's
            full-size masks at a time (``list(...)`` for all).
        """
        for i, frame in enumerate(frame_samples):
            yield self._predict_by_feat_single(mask_logits[i], boxes[i], cls_logits[i].sigmoid(),
                                               frame)

    def _predict_by_feat_single(self, mask_logits: Tensor, boxes: Tensor, scores: Tensor,
                                frame) -> InstanceData:
        """One frame's (k, h, w) mask logits, (k, 4) boxes and (k,) scores (probabilities) at
        the original size (see :meth:`predict_by_feat`). Runs in fp32, outside any autocast."""
        with torch.autocast(mask_logits.device.type, enabled=False):
            return self._rescale_result(mask_logits, boxes, scores, frame)

    def _rescale_result(self, mask_logits: Tensor, boxes: Tensor, scores: Tensor,
                        frame) -> InstanceData:
        pad_h, pad_w = frame.batch_input_shape
        img_h, img_w = frame.img_shape
        ori_h, ori_w = frame.ori_shape
        mask_logits, boxes, scores = mask_logits.float(), boxes.float(), scores.float()
        thr = self.test_cfg['mask_thr']
        if self.test_cfg['mask_rescale'] == 'threshold_nearest':
            fg = F.interpolate(
                mask_logits[None], size=(pad_h, pad_w), mode='bilinear',
                align_corners=False).sigmoid() > thr
            fg = F.interpolate(
                fg[..., :img_h, :img_w].float(), size=(ori_h, ori_w), mode='nearest')[0]
            return self._instances(fg > 0.5, boxes, scores, ori_h, ori_w)
        if (pad_h, pad_w) == (img_h, img_w):
            # no padding: one bilinear step from stride 4 to the original size, as the
            # official evaluation
            logits = F.interpolate(
                mask_logits[None], size=(ori_h, ori_w), mode='bilinear', align_corners=False)[0]
        else:  # padded input: upsample to the padded size, crop the padding, then resize
            logits = F.interpolate(
                mask_logits[None], size=(pad_h, pad_w), mode='bilinear',
                align_corners=False)[..., :img_h, :img_w]
            logits = F.interpolate(
                logits, size=(ori_h, ori_w), mode='bilinear', align_corners=False)[0]
        return self._instances(logits.sigmoid() > thr, boxes, scores, ori_h, ori_w)

    def _instances(self, masks: Tensor, boxes: Tensor, scores: Tensor, ori_h: int,
                   ori_w: int) -> InstanceData:
        """Per-frame result from (k, H, W) bool masks, (k, 4) cxcywh boxes and (k,) scores;
        merged into one instance (union of masks and boxes, best score) unless
        ``test_cfg.select == 'all'``."""
        xyxy = bbox_cxcywh_to_xyxy(boxes) * boxes.new_tensor([ori_w, ori_h, ori_w, ori_h])
        if self.test_cfg['select'] != 'all' and len(masks) > 1:
            masks = masks.any(0, keepdim=True)
            xyxy = torch.cat([xyxy[:, :2].min(0).values, xyxy[:, 2:].max(0).values])[None]
            scores = scores.max()[None]
        return InstanceData(
            masks=masks,
            bboxes=xyxy,
            scores=scores,
            labels=torch.zeros(len(masks), dtype=torch.long, device=masks.device))

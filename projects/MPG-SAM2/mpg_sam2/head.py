"""MPG-SAM 2's head: targets, losses and per-frame results of its one mask per frame."""
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures import TrackDataSample
from mmdet.structures.mask import mask2bbox
from mmdet.utils import reduce_mean
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

MPG_TEST_CFG = dict(mask_thr=0.5, chunk_size=None)


@MODELS.register_module()
class MPGSAM2Head(BaseModule):
    """Losses and post-processing of MPG-SAM 2 (one prediction per frame, no matching).

    Losses (official weights 2 / 5 / 2): sigmoid focal loss on every pixel of the clip
    (mean over the clip's pixels, summed over clips), Dice over the whole clip, both divided
    by the number of frames where the target is visible, and the mask-text similarity loss
    over all frames. Masks are compared at the input resolution: the S/4 logits are
    upsampled bilinearly, as the official code does before its loss.

    Args:
        loss_focal, loss_dice, loss_sim (dict): loss configs (mmdet ``FocalLoss`` with
            ``reduction='none'``, mmdet ``DiceLoss``, :class:`MaskTextSimilarityLoss`).
        test_cfg (dict, optional): ``mask_thr`` (0.5, on probabilities) and ``chunk_size``
            (None: the whole video in one pass; 24: the official MeViS inference, independent
            chunks of 24 frames).
        loss_object (dict, optional): a loss on SAM 2's object score against "the target is
            visible" (e.g. mmdet ``CrossEntropyLoss`` with ``use_sigmoid=True``). None in the
            official recipe, which starts from a trained SAM 2; a SAM 2 trained from scratch
            needs it, since a frame whose object score is negative gets a constant mask
            (SAM 2's "no object" logits) and so no mask gradient.
    """

    def __init__(self,
                 loss_focal: dict = dict(
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
                 loss_sim: dict = dict(type='MaskTextSimilarityLoss', loss_weight=2.0),
                 loss_object: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.loss_focal = MODELS.build(loss_focal)
        self.loss_dice = MODELS.build(loss_dice)
        self.loss_sim = MODELS.build(loss_sim)
        self.loss_object = MODELS.build(loss_object) if loss_object else None
        self.test_cfg = test_cfg

    @property
    def test_cfg(self) -> dict:
        return self._test_cfg

    @test_cfg.setter
    def test_cfg(self, cfg: Optional[dict]) -> None:
        cfg = {**MPG_TEST_CFG, **(cfg or {})}
        if cfg['chunk_size'] is not None and int(cfg['chunk_size']) < 1:
            raise ValueError(f'test_cfg.chunk_size must be None or >= 1, got '
                             f'{cfg["chunk_size"]!r}')
        self._test_cfg = cfg

    # ------------------------------------------------------------------ targets
    @staticmethod
    def get_targets(batch_data_samples: List[TrackDataSample], size: Tuple[int, int],
                    device) -> Dict[str, Tensor]:
        """GT masks of the referred object (the first GT instance) padded to the input size.

        Returns:
            dict: ``masks`` (N, T, H, W) float and ``valid`` (N, T) bool (target visible).
        """
        h, w = size
        masks, valid = [], []
        for clip in batch_data_samples:
            for frame in clip.video_data_samples:
                gt = frame.gt_instances
                full = torch.zeros(h, w)
                if len(gt):
                    m = gt.masks
                    m = m.to_tensor(torch.float32, 'cpu') if hasattr(m, 'to_tensor') \
                        else torch.as_tensor(m, dtype=torch.float32).cpu()
                    mh, mw = min(m.shape[-2], h), min(m.shape[-1], w)
                    full[:mh, :mw] = m[0, :mh, :mw]
                masks.append(full)
                valid.append(bool(len(gt)) and bool(torch.as_tensor(gt.valid).reshape(-1)[0]))
        n = len(batch_data_samples)
        return dict(
            masks=torch.stack(masks).to(device).reshape(n, -1, h, w),
            valid=torch.tensor(valid, device=device).reshape(n, -1))

    # ------------------------------------------------------------------ losses
    def loss_by_feat(self, outputs: Dict[str, Tensor], batch_data_samples: List[TrackDataSample],
                     input_size: Tuple[int, int]) -> Dict[str, Tensor]:
        """Losses of N clips.

        Args:
            outputs (dict): ``masks`` (N, T, h, w) logits, ``sentence_scores`` (N, T).
            batch_data_samples (list[TrackDataSample]): N clips.
            input_size (tuple): (H, W) of the padded input.

        Returns:
            dict: ``loss_focal``, ``loss_dice``, ``loss_sim`` (+ ``loss_object``).
        """
        logits = outputs['masks']
        n, t = logits.shape[:2]
        targets = self.get_targets(batch_data_samples, input_size, logits.device)
        logits = F.interpolate(
            logits.flatten(0, 1)[:, None].float(),
            size=tuple(input_size),
            mode='bilinear',
            align_corners=False)[:, 0].reshape(n, t, *input_size)
        gt = targets['masks']
        num = reduce_mean(targets['valid'].float().sum()).clamp_min(1.0).item()
        focal = self.loss_focal(logits.reshape(n, -1), gt.reshape(n, -1))
        losses = dict(
            loss_focal=focal.mean(1).sum() / num,
            loss_dice=self.loss_dice(logits.reshape(n, -1), gt.reshape(n, -1), avg_factor=num),
            loss_sim=self.loss_sim(
                logits.flatten(0, 1), gt.flatten(0, 1), outputs['sentence_scores'].reshape(-1)))
        if self.loss_object is not None:
            losses['loss_object'] = self.loss_object(outputs['object_scores'].reshape(-1, 1),
                                                     targets['valid'].float().reshape(-1, 1))
        return losses

    # ------------------------------------------------------------------ prediction
    def predict_by_feat(self, mask_logits: Tensor, object_scores: Tensor,
                        frame_samples: Sequence) -> Iterator[InstanceData]:
        """Per-frame results.

        Args:
            mask_logits (Tensor): (T, h, w) logits over the padded input (stride S/h).
            object_scores (Tensor): (T,) SAM 2 object score logits.
            frame_samples (Sequence[DetDataSample]): T samples (``batch_input_shape``,
                ``img_shape``, ``ori_shape``).

        Yields:
            InstanceData: per frame ``masks`` (1, H, W) bool at the original size (logits
            upsampled to the input size, cropped, resized to the original size: two bilinear
            steps as the official code), ``bboxes`` (1, 4) from the mask, ``scores`` (1,)
            sigmoid of the object score, ``labels`` (1,) zeros.
        """
        for logits, score, frame in zip(mask_logits, object_scores, frame_samples):
            with torch.autocast(logits.device.type, enabled=False):
                pad_h, pad_w = frame.batch_input_shape
                img_h, img_w = frame.img_shape
                ori_h, ori_w = frame.ori_shape
                up = F.interpolate(
                    logits[None, None].float(),
                    size=(pad_h, pad_w),
                    mode='bilinear',
                    align_corners=False)[..., :img_h, :img_w]
                up = F.interpolate(up, size=(ori_h, ori_w), mode='bilinear', align_corners=False)
                mask = up[0].sigmoid() > self.test_cfg['mask_thr']
            yield InstanceData(
                masks=mask,
                bboxes=mask2bbox(mask),
                scores=score.float().sigmoid().reshape(1),
                labels=torch.zeros(1, dtype=torch.long, device=mask.device))

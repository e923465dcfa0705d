"""What the RVOS detectors share: clips in, one result per frame out; the head
(:class:`BaseRVOSHead`) owns the targets, losses, selection and post-processing."""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmdet.registry import MODELS
from mmdet.structures import TrackDataSample
from mmdet.structures.mask import mask2bbox
from mmengine.structures import InstanceData
from torch import Tensor

from ..utils import clip_text


def check_refiner_cfg(refiner) -> None:
    """``test_cfg.refiner`` must be None, a module or a config dict with ``type``."""
    if refiner is not None and not (isinstance(refiner, torch.nn.Module) or
                                    (isinstance(refiner, dict) and 'type' in refiner)):
        raise ValueError('test_cfg.refiner must be None, a module or a config dict with '
                         f"'type' (e.g. dict(type='SAM2VideoRefiner', sam2=...)), got "
                         f'{refiner!r}')


def mask_instance(mask: Tensor, score: Tensor) -> InstanceData:
    """One frame's result from a (H, W) bool mask: the mask, its enclosing box (xyxy,
    pixels; zeros when empty) and ``score``."""
    return InstanceData(
        masks=mask[None],
        bboxes=mask2bbox(mask[None]),
        scores=score.reshape(1).float(),
        labels=torch.zeros(1, dtype=torch.long, device=mask.device))


class BaseRVOSDetector:
    """Clip-level training and prediction of a referring video segmentation detector.

    A mixin placed before the mmdet detector class (``class ReferDINO(BaseRVOSDetector,
    GroundingDINO)``). Inputs are clips: ``batch_inputs`` (N, T, 3, H, W) and N
    :class:`TrackDataSample` s, each with one referring expression (``.text``).

    The subclass implements:

    * ``forward_clips(batch_inputs, batch_data_samples)`` -> list of prediction sets (one per
      decoder layer, + optionally the encoder proposals), each ``cls`` (N, T, Q), ``boxes``
      (N, T, Q, 4) normalised cxcywh, ``masks`` (N, T, Q, H/4, W/4) logits (see
      :meth:`BaseRVOSHead.loss_by_feat`);
    * ``predict_clip(frames, frame_samples, text)`` -> T per-frame ``InstanceData``.

    ``test_cfg`` is the head's dict (:class:`BaseRVOSHead`: selection, mask threshold and
    rescale), extended with the detector's own keys: reading, changing or replacing
    ``model.test_cfg`` acts on ``model.bbox_head.test_cfg``. ``test_cfg.refiner`` (e.g.
    :class:`~mmrvos.models.refiners.SAM2VideoRefiner`) post-processes every clip's masks.
    """

    #: True when ``predict_clip`` applies ``test_cfg.refiner`` itself (ReferDINO refines
    #: inside ``predict_video``); otherwise :meth:`predict_texts` refines its results.
    refines_in_predict_clip = False
    #: True when ``predict_clip`` only slices ``frames`` (then a lazy reader may be given)
    reads_clips_lazily = False

    @property
    def test_cfg(self) -> Optional[dict]:
        head = self._modules.get('bbox_head')
        return self.__dict__.get('_test_cfg_before_head') if head is None else head.test_cfg

    @test_cfg.setter
    def test_cfg(self, cfg: Optional[dict]) -> None:
        head = self._modules.get('bbox_head')
        if head is None:  # mmdet's __init__ sets test_cfg before it builds the head
            self.__dict__['_test_cfg_before_head'] = cfg
        else:
            head.test_cfg = cfg

    def loss(self, batch_inputs: Tensor, batch_data_samples: List[TrackDataSample]) -> dict:
        """Losses of a batch of clips (N, T, 3, H, W): last decoder layer unprefixed, ``d{i}.``
        the earlier layers, ``enc_`` the encoder proposals."""
        outputs = self.forward_clips(batch_inputs, batch_data_samples)
        mask_size = (batch_inputs.shape[-2] // 4, batch_inputs.shape[-1] // 4)
        return self.bbox_head.loss_by_feat(outputs, batch_data_samples, mask_size)

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: List[TrackDataSample],
                rescale: bool = True) -> List[TrackDataSample]:
        """Segment the referred object in every frame of every clip.

        Sets ``video_data_samples[t].pred_instances`` with ``masks`` (k, H, W) bool at the
        original resolution, ``bboxes`` (k, 4) xyxy and ``scores`` (k,) (see
        :meth:`BaseRVOSHead.predict_by_feat`).
        """
        for n, clip in enumerate(batch_data_samples):
            results = self.predict_texts(batch_inputs[n], clip.video_data_samples,
                                         [clip_text(clip)])[0]
            for frame, res in zip(clip.video_data_samples, results):
                frame.pred_instances = res
        return batch_data_samples

    def predict_texts(self, frames: Union[Tensor, Sequence], frame_samples: list,
                      texts: Sequence[str]) -> List[List[InstanceData]]:
        """E lists of T per-frame results of one clip, one per expression of ``texts``
        (:meth:`predict_clip`), refined by ``test_cfg.refiner`` when set (all expressions at
        once: SAM 2's input frames are prepared once).

        Args:
            frames (Tensor | Sequence): (T, 3, H, W), or a lazy reader of such slices when
                ``reads_clips_lazily``. frame_samples (list): T ``DetDataSample`` s.
        """
        results = [self.predict_clip(frames, frame_samples, text) for text in texts]
        if self.refiner is not None and not self.refines_in_predict_clip:
            results = self.refine_video(frames, frame_samples, results)
        return results

    @property
    def refiner(self) -> Optional[torch.nn.Module]:
        """``test_cfg.refiner`` (e.g. :class:`~mmrvos.models.refiners.SAM2VideoRefiner`),
        built on first use and kept out of this model's modules: its weights are not part of
        the detector's state dict or checkpoints. None when not configured."""
        cfg = (self.test_cfg or {}).get('refiner')
        if cfg is None:
            return None
        check_refiner_cfg(cfg)
        if isinstance(cfg, torch.nn.Module):
            return cfg
        key = repr(cfg)  # rebuilt when test_cfg.refiner is changed
        cached = self.__dict__.get('_built_refiner')
        if cached is None or cached[0] != key:
            cached = (key, MODELS.build(cfg).eval())
            self.__dict__['_built_refiner'] = cached
        return cached[1]

    @torch.no_grad()
    def refine_video(self, video: Union[Tensor, Sequence], frame_samples: list,
                     results: List[List[InstanceData]]) -> List[List[InstanceData]]:
        """Refine each expression's per-frame results with ``test_cfg.refiner`` (fp32).

        Args:
            video (Tensor | Sequence): the (T, 3, H, W) normalised frames the results were
                predicted from (a lazy reader is read again ``test_cfg.chunk_size`` frames at a
                time; default: all at once).
            frame_samples (list[DetDataSample]): T samples (``img_shape``: the frame without
                its padding; ``ori_shape``: the size of the masks).
            results (list[list[InstanceData]]): E lists of T results (the instances of a frame
                are merged into one mask; a frame may have none).

        Returns:
            list[list[InstanceData]]: E lists of T results, one instance per frame (mask,
            its enclosing box, the detector's best score of the frame).
        """
        refiner = self.refiner
        device = next(self.parameters()).device
        refiner.to(device)
        chunk = int(self.test_cfg.get('chunk_size') or len(video))
        frames = []  # (1, 3, S, S) each: SAM 2's input size, so the video is not held twice
        for s in range(0, len(video), chunk):
            clip = video[s:s + chunk].to(device)
            for i, sample in enumerate(frame_samples[s:s + chunk]):
                h, w = sample.img_shape[:2]
                frames.append(refiner.prepare_frames(clip[i:i + 1, :, :h, :w]))
            del clip
        frames = torch.cat(frames)
        out = []
        for frame_results in results:
            ori_h, ori_w = frame_samples[0].ori_shape[:2]
            masks = torch.stack([
                r.masks.any(0) if len(r.masks) else torch.zeros(
                    (ori_h, ori_w), dtype=torch.bool, device=device) for r in frame_results
            ]).to(device)
            scores = torch.stack([
                r.scores.float().max() if len(r.scores) else torch.zeros((), device=device)
                for r in frame_results
            ]).to(device)
            refined, _ = refiner.refine(frames, masks, scores)
            out.append([mask_instance(m, sc) for m, sc in zip(refined, scores)])
        return out

    def predict_clip(self, frames: Tensor, frame_samples: list, text: str) -> List[InstanceData]:
        """Results of one clip: ``frames`` (T, 3, H, W), T frame samples, its expression."""
        raise NotImplementedError

    def forward_clips(self, batch_inputs: Tensor,
                      batch_data_samples: List[TrackDataSample]) -> List[Dict[str, Tensor]]:
        """All prediction sets of a batch of clips (see the class docstring)."""
        raise NotImplementedError

    def _forward(self,
                 batch_inputs: Tensor,
                 batch_data_samples: Optional[List[TrackDataSample]] = None):
        """``mode='tensor'``: the raw prediction sets of :meth:`forward_clips`."""
        return self.forward_clips(batch_inputs, batch_data_samples)

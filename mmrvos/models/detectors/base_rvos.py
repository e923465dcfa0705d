"""What the RVOS detectors share: clips in, one result per frame out; the head
(:class:`BaseRVOSHead`) owns the targets, losses, selection and post-processing."""
from typing import Dict, List, Optional

from mmdet.structures import TrackDataSample
from mmengine.structures import InstanceData
from torch import Tensor

from ..utils import clip_text


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
    ``model.test_cfg`` acts on ``model.bbox_head.test_cfg``.
    """

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
            results = self.predict_clip(batch_inputs[n], clip.video_data_samples, clip_text(clip))
            for frame, res in zip(clip.video_data_samples, results):
                frame.pred_instances = res
        return batch_data_samples

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

"""Packing of an RVOS clip into ``inputs`` + mmdet ``TrackDataSample``."""
from collections import Counter
from typing import Optional, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

TRACK_META_KEYS = ('text', 'video_id', 'exp_id', 'exp_type', 'annotator')
FRAME_META_KEYS = ('img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip', 'flip_direction',
                   'frame_id', 'frame_index', 'video_id', 'exp_id', 'text', 'ori_video_length',
                   'exp_type', 'annotator')
FRAME_META_DEFAULTS = dict(
    scale_factor=(1.0, 1.0), flip=False, flip_direction=None, exp_type=None, annotator=None)


def target_valid(results: dict, i: int) -> bool:
    """Whether frame i of a clip shows the annotated target (annotated AND non-empty mask)."""
    return bool(results['gt_annotated'][i][0]) and bool(results['gt_masks'][i].masks.any())


@TRANSFORMS.register_module()
class FilterClipWithoutTarget(BaseTransform):
    """Return ``None`` (mmengine then draws another sample) when no frame of the clip shows the
    target after augmentation, as ReferDINO's training loader does. Training pipelines only."""

    def transform(self, results: dict) -> Optional[dict]:
        if any(target_valid(results, i) for i in range(len(results['gt_masks']))):
            return results
        return None


@TRANSFORMS.register_module()
class PackRVOSInputs(BaseTransform):
    """Pack a clip (per-frame lists of results) for the model.

    Output:
        - ``inputs``: uint8 Tensor (T, 3, H, W), BGR (float images from photometric
          augmentation are rounded and clipped to [0, 255]).
        - ``data_samples``: ``TrackDataSample`` with metainfo ``text`` (after any left/right
          swap), ``video_id``, ``exp_id``, ``frame_ids`` (frame names), ``exp_type``,
          ``annotator``, and ``video_data_samples``: T ``DetDataSample`` whose metainfo holds
          ``FRAME_META_KEYS`` and whose ``gt_instances`` (when masks were loaded) has exactly
          one instance, the referred target:

          - ``bboxes`` float (1, 4) xyxy in ``img_shape`` pixels, from the mask (zeros if not
            valid),
          - ``masks`` ``BitmapMasks`` (1, h, w) (zeros if not valid),
          - ``labels`` long (1,) = 0,
          - ``valid`` bool (1,): annotated on this frame and visible,
          - ``annotated`` bool (1,): this frame carries annotation for the target.

    Every frame of the clip must have the same original size (``ori_shape``); a frame of
    another size raises ``ValueError`` naming it (it would be scaled differently from the
    others, and unannotated frames are not size-checked against any mask).

    Args:
        meta_keys (Sequence[str], optional): extra per-frame keys to copy into the frame
            metainfo.
    """

    def __init__(self, meta_keys: Optional[Sequence[str]] = None) -> None:
        self.meta_keys = tuple(FRAME_META_KEYS) + tuple(meta_keys or ())

    @staticmethod
    def _check_frame_sizes(results: dict) -> None:
        """Every frame of a clip must have the video's size (before resizing): a frame of
        another size would be rescaled differently from its neighbours, silently."""
        shapes = [tuple(s[:2]) for s in results.get('ori_shape') or []]
        if len(set(shapes)) <= 1:
            return
        common = Counter(shapes).most_common(1)[0][0]
        paths = results.get('img_path') or [None] * len(shapes)
        ids = results.get('frame_id') or [None] * len(shapes)
        odd = next(i for i, s in enumerate(shapes) if s != common)
        ref = shapes.index(common)
        name = lambda i: paths[i] or f'frame {ids[i]!r}'  # noqa: E731
        raise ValueError(
            f'{name(odd)}: frame size {shapes[odd][1]}x{shapes[odd][0]} (WxH) differs from the '
            f'other frames of video {results["video_id"][0]!r} '
            f'({common[1]}x{common[0]}, e.g. {name(ref)}); every frame of a video must have '
            'one size')

    @staticmethod
    def _stack_images(imgs, video_id) -> torch.Tensor:
        shapes = {img.shape for img in imgs}
        if len(shapes) != 1:
            raise ValueError(f'frames of video {video_id!r} have different shapes after the '
                             f'pipeline: {sorted(shapes)}')
        clip = np.stack(imgs, axis=0)
        if clip.ndim == 3:  # grayscale
            clip = np.repeat(clip[..., None], 3, axis=-1)
        if clip.dtype != np.uint8:
            clip = np.clip(np.round(clip), 0, 255).astype(np.uint8)
        return torch.from_numpy(np.ascontiguousarray(clip.transpose(0, 3, 1, 2)))

    @staticmethod
    def _target(results: dict, i: int) -> InstanceData:
        masks: BitmapMasks = results['gt_masks'][i]
        if len(masks) != 1:
            raise ValueError(f'expected exactly one target mask per frame, got {len(masks)}')
        annotated = bool(results['gt_annotated'][i][0])
        valid = target_valid(results, i)
        h, w = masks.height, masks.width
        if valid:
            bboxes = HorizontalBoxes.from_instance_masks(masks).tensor.float()
        else:
            masks = BitmapMasks(np.zeros((1, h, w), dtype=np.uint8), h, w)
            bboxes = torch.zeros((1, 4), dtype=torch.float32)
        inst = InstanceData()
        inst.bboxes = bboxes
        inst.masks = masks
        inst.labels = torch.zeros((1, ), dtype=torch.long)
        inst.valid = torch.tensor([valid], dtype=torch.bool)
        inst.annotated = torch.tensor([annotated], dtype=torch.bool)
        return inst

    def transform(self, results: dict) -> dict:
        imgs = results['img']
        num = len(imgs)
        video_id = results['video_id'][0]
        self._check_frame_sizes(results)
        inputs = self._stack_images(imgs, video_id)
        frames = []
        for i in range(num):
            sample = DetDataSample()
            meta = {}
            for key in self.meta_keys:
                if key in results:
                    meta[key] = results[key][i]
                elif key in FRAME_META_DEFAULTS:
                    meta[key] = FRAME_META_DEFAULTS[key]
            sample.set_metainfo(meta)
            if 'gt_masks' in results:
                sample.gt_instances = self._target(results, i)
            frames.append(sample)
        track = TrackDataSample()
        track.video_data_samples = frames
        track_meta = {k: results[k][0] if k in results else None for k in TRACK_META_KEYS}
        track_meta['frame_ids'] = list(results['frame_id'])
        track.set_metainfo(track_meta)
        return dict(inputs=inputs, data_samples=track)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'

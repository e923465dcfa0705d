"""Per-frame loading of RVOS clips: the frame image and the referred target's mask.

Both transforms work on ONE frame's results dict, so they run inside mmcv's
``TransformBroadcaster`` after :class:`ClipSample` (as mmdet's tracking pipelines do).
"""
import os.path as osp
import warnings
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from mmdet.registry import TRANSFORMS
from mmdet.structures.mask import BitmapMasks

# one warning class for every annotation repair (datasets and evaluation)
from mmrvos.evaluation.functional.mask_io import DEFAULT_SIZE_TOLERANCE, AnnotationRepairWarning
from mmrvos.fileio import read_image_strict
from .mask_sources import decode_mask_ref, describe_ref

__all__ = ['AnnotationRepairWarning', 'LoadRVOSFrame', 'LoadRVOSAnnotations']


@TRANSFORMS.register_module()
class LoadRVOSFrame(LoadImageFromFile):
    """Load one frame (BGR uint8) from ``img_path``, or from ``video_path`` + ``frame_index``.

    Unlike mmcv's loader, bad files fail loudly with the file name: a missing file raises
    ``FileNotFoundError``; an undecodable or truncated JPEG (no end-of-image marker) or PNG (no
    ``IEND`` chunk) raises ``OSError`` (:func:`mmrvos.fileio.read_image_strict`, also used by
    the demo's frame reader); ``check_jpeg_end=False`` skips the end-marker check. Videos
    (A2D-Sentences mp4 clips) are decoded once with OpenCV and the decoded frames of the last
    video are cached, so the T frames of one clip decode it once.

    Added keys: ``img`` (H, W, 3) uint8 BGR, ``img_shape`` (H, W), ``ori_shape`` (H, W).
    """

    def __init__(self, check_jpeg_end: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.check_jpeg_end = check_jpeg_end
        self._video_cache = (None, None)

    def _read_image(self, path: str) -> np.ndarray:
        return read_image_strict(
            path,
            flag=self.color_type,
            backend=self.imdecode_backend,
            check_end=self.check_jpeg_end)

    def _read_video_frame(self, path: str, index: int) -> np.ndarray:
        if self._video_cache[0] != path:
            import cv2
            if not osp.isfile(path):
                raise FileNotFoundError(f'video not found: {path}')
            cap = cv2.VideoCapture(path)
            frames = []
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                frames.append(frame)
            cap.release()
            if not frames:
                raise OSError(f'cannot decode any frame of video {path}')
            self._video_cache = (path, frames)
        frames = self._video_cache[1]
        if not 0 <= index < len(frames):
            raise IndexError(f'frame {index} out of range for {path} ({len(frames)} frames)')
        return frames[index]

    def transform(self, results: dict) -> dict:
        if results.get('video_path'):
            img = self._read_video_frame(results['video_path'], int(results['frame_index']))
        else:
            img = self._read_image(results['img_path'])
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


@TRANSFORMS.register_module()
class LoadRVOSAnnotations(BaseTransform):
    """Load the referred target's mask of one frame from ``mask_ref``.

    ``mask_ref`` is decoded by :func:`mmrvos.datasets.transforms.mask_sources.decode_mask_ref`;
    ``None`` means the frame carries no annotation for the target.

    Mask/frame size mismatch (real data has them, e.g. DAVIS ``judo/00005.png`` is 853 px wide
    for an 854-px frame): if both sides differ by at most ``size_tolerance`` pixels (default 1,
    that quirk) the mask is zero-padded or cropped at its bottom/right edge to the frame size,
    keeping the top-left aligned, and an :class:`AnnotationRepairWarning` naming the file is
    emitted; larger mismatches raise ``ValueError`` naming the mask, the frame and both sizes.
    ``size_tolerance=0`` makes every mismatch an error.

    Required keys: ``mask_ref``, ``ori_shape`` (so run after :class:`LoadRVOSFrame`).
    Added keys: ``gt_masks`` (BitmapMasks, 1 x H x W), ``gt_annotated`` (bool (1,)).
    """

    def __init__(self, size_tolerance: int = DEFAULT_SIZE_TOLERANCE) -> None:
        self.size_tolerance = size_tolerance

    def _fit(self, mask: np.ndarray, shape, ref: dict, frame: Optional[str] = None) -> np.ndarray:
        h, w = shape
        mh, mw = mask.shape
        if (mh, mw) == (h, w):
            return mask
        name = describe_ref(ref)
        if abs(mh - h) > self.size_tolerance or abs(mw - w) > self.size_tolerance:
            raise ValueError(f'{name}: mask size {mw}x{mh} (WxH) differs from its frame '
                             f'{frame or ""} {w}x{h} by more than '
                             f'size_tolerance={self.size_tolerance} px')
        warnings.warn(
            f'{name}: mask size {mw}x{mh} (WxH) differs from its frame {w}x{h}; '
            'padding/cropping the mask at the bottom/right edge to the frame size',
            AnnotationRepairWarning)
        fitted = np.zeros((h, w), dtype=mask.dtype)
        fitted[:min(h, mh), :min(w, mw)] = mask[:h, :w]
        return fitted

    def transform(self, results: dict) -> dict:
        h, w = results['ori_shape']
        ref: Optional[dict] = results.get('mask_ref')
        decoded = decode_mask_ref(ref)
        if decoded is None:
            mask, annotated = np.zeros((h, w), dtype=bool), False
        else:
            mask, annotated = decoded
            if mask is None:  # annotated, target absent
                mask = np.zeros((h, w), dtype=bool)
            mask = self._fit(mask, (h, w), ref, results.get('img_path'))
        results['gt_masks'] = BitmapMasks(mask[None].astype(np.uint8), h, w)
        results['gt_annotated'] = np.array([annotated], dtype=bool)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(size_tolerance={self.size_tolerance})'

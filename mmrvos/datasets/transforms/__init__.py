"""mmrvos.datasets.transforms: clip sampling, per-frame loading, video-consistent augmentation
and packing for RVOS. Everything is registered in mmdet's ``TRANSFORMS``."""
from .augment import (RVOSPhotoMetricDistortion, RVOSRandomChoice, RVOSRandomCrop, RVOSRandomFlip,
                      swap_left_right)
from .clip_sample import ClipSample
from .formatting import FilterClipWithoutTarget, PackRVOSInputs
from .loading import AnnotationRepairWarning, LoadRVOSAnnotations, LoadRVOSFrame
from .mask_sources import decode_mask_ref
from .resize import ShortSideResize, short_side_size

__all__ = [
    'ClipSample', 'LoadRVOSFrame', 'LoadRVOSAnnotations', 'AnnotationRepairWarning',
    'RVOSRandomFlip', 'RVOSRandomCrop', 'RVOSRandomChoice', 'RVOSPhotoMetricDistortion',
    'swap_left_right', 'FilterClipWithoutTarget', 'PackRVOSInputs', 'decode_mask_ref',
    'ShortSideResize', 'short_side_size'
]

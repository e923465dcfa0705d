"""Uniform access to per-frame data samples (``DetDataSample`` or dict form)."""
from typing import Any, Optional

import numpy as np


def field(sample: Any, key: str, default: Any = None) -> Any:
    """Metainfo / data field of a ``DetDataSample`` or of its dict form."""
    if isinstance(sample, dict):
        if key in sample:
            return sample[key]
        return sample.get('metainfo', {}).get(key, default)
    if key in sample:
        return sample.get(key)
    return sample.metainfo.get(key, default)


def to_numpy(x: Any) -> Optional[np.ndarray]:
    """Tensor / ``BitmapMasks`` / array -> numpy (``None`` stays ``None``)."""
    if x is None:
        return None
    if hasattr(x, 'to_ndarray'):
        return x.to_ndarray()
    if hasattr(x, 'detach'):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def instances(sample: Any, name: str) -> Optional[Any]:
    """``pred_instances`` / ``gt_instances`` of a sample, or ``None``."""
    return field(sample, name)


def inst_field(inst: Any, key: str) -> Any:
    if inst is None:
        return None
    if isinstance(inst, dict):
        return inst.get(key)
    return inst.get(key) if key in inst else None


def frame_masks(sample: Any, name: str = 'pred_instances') -> Optional[np.ndarray]:
    """bool ``(k, H, W)`` masks of a frame, ``None`` when there are none."""
    m = to_numpy(inst_field(instances(sample, name), 'masks'))
    if m is None:
        return None
    m = m.astype(bool, copy=False)
    if m.ndim == 2:
        m = m[None]
    return m


def frame_key(sample: Any) -> tuple:
    """``(video_id, exp_id, frame_id)`` of a frame; checks they are set."""
    key = tuple(field(sample, k) for k in ('video_id', 'exp_id', 'frame_id'))
    if any(k is None for k in key):
        raise KeyError('a data sample lacks video_id / exp_id / frame_id in '
                       f'its metainfo (got {key})')
    return tuple(str(k) for k in key)

"""Clip <-> frame bookkeeping of the RVOS detectors: frames of N clips of T frames run as a
batch of N * T (clip-major), then are viewed again per clip.

Shapes: N clips, T frames, Q queries, C channels, S flattened multi-level tokens.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor


def to_clip_shape(out: Dict, n: int, t: int) -> Dict:
    """Every tensor (N * T, ...) of ``out`` viewed as (N, T, ...); other values kept."""
    return {
        k: (v.reshape(n, t, *v.shape[1:]) if isinstance(v, Tensor) else v)
        for k, v in out.items()
    }


def gather_queries(x: Tensor, index: Tensor) -> Tensor:
    """Gather along dim 2 of ``x`` (N, T, Q, ...) with ``index`` (N, T, K): (N, T, K, ...)."""
    shape = index.shape + x.shape[3:]
    idx = index.reshape(index.shape + (1, ) * (x.dim() - 3)).expand(shape)
    return torch.gather(x, 2, idx)


def frame_times(frame_samples: Sequence, n: int, t: int, device) -> Tensor:
    """(N, T) float indices of the frames in their video (``frame_index`` metainfo; the
    position in the clip, 0..T-1, where absent)."""
    times = [s.metainfo.get('frame_index', i % t) for i, s in enumerate(frame_samples)]
    return torch.as_tensor(times, dtype=torch.float32, device=device).reshape(n, t)


def split_levels(memory: Tensor, spatial_shapes: Tensor) -> List[Tensor]:
    """Flattened multi-level memory (B, S, C) -> list of (B, C, H_l, W_l), fine to coarse.

    Args:
        memory (Tensor): (B, S, C), S = sum of H_l * W_l.
        spatial_shapes (Tensor): (num_levels, 2) (H_l, W_l).
    """
    sizes = [int(h * w) for h, w in spatial_shapes.tolist()]
    levels = memory.split(sizes, dim=1)
    return [
        lvl.transpose(1, 2).reshape(memory.shape[0], -1, int(h), int(w))
        for lvl, (h, w) in zip(levels, spatial_shapes.tolist())
    ]


def mask_padding_and_ratio(frame_samples: Sequence,
                           mask_feats: Tensor) -> Tuple[Optional[Tensor], Tensor]:
    """Padding of a mask feature map and the valid part of every frame.

    Args:
        frame_samples (Sequence[DetDataSample]): B samples (``img_shape``, and
            ``batch_input_shape`` of the padded batch).
        mask_feats (Tensor): (B, C, h, w) map of the padded batch.

    Returns:
        tuple: padding mask (B, h, w), True on padded cells (None when no frame is padded),
        and valid ratios (B, 2) (width, height) of every frame in the padded input.
    """
    pad_h, pad_w = frame_samples[0].batch_input_shape
    h, w = mask_feats.shape[-2:]
    shapes = torch.tensor([s.img_shape for s in frame_samples],
                          dtype=torch.float32,
                          device=mask_feats.device)
    ratio = torch.stack([shapes[:, 1] / pad_w, shapes[:, 0] / pad_h], -1)
    if bool((ratio == 1).all()):
        return None, ratio
    ys = torch.arange(h, device=mask_feats.device)[None, :, None]
    xs = torch.arange(w, device=mask_feats.device)[None, None, :]
    padding = (ys >= (ratio[:, 1] * h).ceil()[:, None, None]) | \
              (xs >= (ratio[:, 0] * w).ceil()[:, None, None])
    return padding, ratio

"""Region (J) and boundary (F) measures with the DAVIS 2017 definitions.

Both measures are computed per frame on boolean masks shaped ``(T, H, W)``
(or a single ``(H, W)`` frame) and follow the official DAVIS 2017 evaluation
code (``davis2017/metrics.py`` of ``davisvideochallenge/davis2017-evaluation``)
value for value:

* ``J = |G & P| / |G | P|`` counted outside the void pixels; ``1`` when the
  union is empty (an empty prediction of an empty target is perfect).
* ``F = 2 P R / (P + R)`` of the boundary precision ``P`` and recall ``R``.
  Boundaries are the one-pixel maps of :func:`boundary_map`; a boundary pixel
  is matched when the other boundary lies inside a disk of radius
  ``ceil(bound_th * sqrt(H**2 + W**2))`` pixels around it (``bound_th`` is
  used as the radius itself when it is ``>= 1``). Degenerate cases: both
  boundaries empty -> ``F = 1``; exactly one empty -> ``F = 0``.

Everything is vectorised over pixels; the only Python loops are over frames
(``cv2.dilate`` and the per-frame pixel counts).
"""
from typing import Optional, Tuple

import cv2
import numpy as np

__all__ = ['disk', 'boundary_radius', 'boundary_map', 'region_jaccard', 'boundary_f']

#: Frames processed together by :func:`boundary_f` (bounds peak memory).
_CHUNK = 64


def disk(radius: int) -> np.ndarray:
    """Disk structuring element ``x**2 + y**2 <= radius**2``.

    Identical to ``skimage.morphology.disk(radius)`` (``strict_radius=True``),
    the element the official DAVIS code dilates with.

    Args:
        radius (int): Radius in pixels, ``>= 0``.

    Returns:
        np.ndarray: ``(2r+1, 2r+1)`` uint8 array of 0/1.
    """
    radius = int(radius)
    if radius < 0:
        raise ValueError(f'disk radius must be >= 0, got {radius}')
    coords = np.arange(-radius, radius + 1)
    return (coords[:, None]**2 + coords[None, :]**2 <= radius**2).astype(np.uint8)


def boundary_radius(shape: Tuple[int, int], bound_th: float = 0.008) -> int:
    """Boundary matching tolerance in pixels.

    Args:
        shape (tuple[int, int]): Frame size ``(H, W)``.
        bound_th (float): Fraction of the image diagonal, or a radius in
            pixels when ``>= 1``.

    Returns:
        int: ``bound_th`` if ``bound_th >= 1`` else
        ``ceil(bound_th * sqrt(H**2 + W**2))``.
    """
    if bound_th >= 1:
        return int(bound_th)
    return int(np.ceil(bound_th * np.linalg.norm(shape)))


def boundary_map(seg: np.ndarray) -> np.ndarray:
    """One-pixel-thick boundary map of binary masks.

    A pixel is a boundary pixel when it differs from its east, south or
    south-east neighbour (the boundary is offset half a pixel towards the
    origin); the last row compares with the east neighbour only, the last
    column with the south neighbour only, and the bottom-right pixel is never
    a boundary. This is the ``seg2bmap`` rule of the DAVIS / BSDS code at full
    resolution.

    Args:
        seg (np.ndarray): Masks ``(..., H, W)``; non-zero is foreground.

    Returns:
        np.ndarray: Bool boundary maps ``(..., H, W)``.
    """
    seg = np.asarray(seg).astype(bool, copy=False)
    bmap = np.zeros(seg.shape, dtype=bool)
    centre = seg[..., :-1, :-1]
    inner = bmap[..., :-1, :-1]
    np.not_equal(centre, seg[..., :-1, 1:], out=inner)
    inner |= centre != seg[..., 1:, :-1]
    inner |= centre != seg[..., 1:, 1:]
    np.not_equal(seg[..., -1, :-1], seg[..., -1, 1:], out=bmap[..., -1, :-1])
    np.not_equal(seg[..., :-1, -1], seg[..., 1:, -1], out=bmap[..., :-1, -1])
    return bmap


def _count(masks: np.ndarray) -> np.ndarray:
    """Foreground pixels per frame of bool ``(T, H, W)`` -> int64 ``(T,)``.

    ``np.count_nonzero`` without ``axis`` is several times faster than with
    one (which casts and sums), hence the loop over frames.
    """
    return np.fromiter((np.count_nonzero(m) for m in masks), np.int64, count=len(masks))


def _as_frames(gt: np.ndarray, pred: np.ndarray, void: Optional[np.ndarray]) -> tuple:
    """Check shapes, cast to bool and lift ``(H, W)`` inputs to ``(1, H, W)``."""
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f'ground truth {gt.shape} and prediction '
                         f'{pred.shape} shapes differ')
    if gt.ndim not in (2, 3):
        raise ValueError('masks must be (H, W) or (T, H, W), got shape '
                         f'{gt.shape}')
    if void is not None:
        void = np.asarray(void)
        if void.shape != gt.shape:
            raise ValueError(f'void mask {void.shape} and ground truth '
                             f'{gt.shape} shapes differ')
        void = void.astype(bool, copy=False)
        if void.ndim == 2:
            void = void[None]
    single = gt.ndim == 2
    gt = gt.astype(bool, copy=False)
    pred = pred.astype(bool, copy=False)
    if single:
        gt, pred = gt[None], pred[None]
    return gt, pred, void, single


def region_jaccard(gt: np.ndarray,
                   pred: np.ndarray,
                   void: Optional[np.ndarray] = None) -> np.ndarray:
    """Region similarity J (Jaccard index) per frame.

    Args:
        gt (np.ndarray): Ground-truth masks ``(T, H, W)`` or ``(H, W)``.
        pred (np.ndarray): Predicted masks, same shape.
        void (np.ndarray, optional): Pixels to ignore, same shape.

    Returns:
        np.ndarray: float64 ``(T,)`` (a ``np.float64`` for ``(H, W)`` input);
        ``1.0`` where the union is empty.
    """
    gt, pred, void, single = _as_frames(gt, pred, void)
    inter = gt & pred
    union = gt | pred
    if void is not None:
        inter &= ~void
        union &= ~void
    inter = _count(inter)
    union = _count(union)
    j = np.ones(len(union), dtype=np.float64)
    nonempty = union > 0
    j[nonempty] = inter[nonempty] / union[nonempty]
    return j[0] if single else j


def boundary_f(gt: np.ndarray,
               pred: np.ndarray,
               bound_th: float = 0.008,
               void: Optional[np.ndarray] = None) -> np.ndarray:
    """Boundary accuracy F (contour F-measure) per frame.

    Args:
        gt (np.ndarray): Ground-truth masks ``(T, H, W)`` or ``(H, W)``.
        pred (np.ndarray): Predicted masks, same shape.
        bound_th (float): Tolerance as a fraction of the frame diagonal
            (radius in pixels when ``>= 1``). Defaults to 0.008.
        void (np.ndarray, optional): Pixels removed from both masks before
            their boundaries are taken, same shape.

    Returns:
        np.ndarray: float64 ``(T,)`` (a ``np.float64`` for ``(H, W)`` input).
    """
    gt, pred, void, single = _as_frames(gt, pred, void)
    num_frames = gt.shape[0]
    kernel = disk(boundary_radius(gt.shape[-2:], bound_th))
    n_fg = np.zeros(num_frames, dtype=np.int64)
    n_gt = np.zeros(num_frames, dtype=np.int64)
    fg_match = np.zeros(num_frames, dtype=np.int64)
    gt_match = np.zeros(num_frames, dtype=np.int64)
    for start in range(0, num_frames, _CHUNK):
        sl = slice(start, start + _CHUNK)
        fg_c, gt_c = pred[sl], gt[sl]
        if void is not None:
            fg_c = fg_c & ~void[sl]
            gt_c = gt_c & ~void[sl]
        fg_b = boundary_map(fg_c)
        gt_b = boundary_map(gt_c)
        n_fg[sl] = _count(fg_b)
        n_gt[sl] = _count(gt_b)
        for i in range(fg_b.shape[0]):
            t = start + i
            if n_fg[t] == 0 or n_gt[t] == 0:
                continue  # degenerate frame, decided below without matching
            fg_u8 = fg_b[i].view(np.uint8)
            gt_u8 = gt_b[i].view(np.uint8)
            fg_dil = cv2.dilate(fg_u8, kernel).view(bool)
            gt_dil = cv2.dilate(gt_u8, kernel).view(bool)
            fg_match[t] = np.count_nonzero(fg_b[i] & gt_dil)
            gt_match[t] = np.count_nonzero(gt_b[i] & fg_dil)

    both = (n_fg > 0) & (n_gt > 0)
    precision = np.where(n_fg == 0, 1.0, 0.0)  # fg empty: P=1; gt empty: P=0
    recall = np.where(n_gt == 0, 1.0, 0.0)
    precision[both] = fg_match[both] / n_fg[both].astype(np.float64)
    recall[both] = gt_match[both] / n_gt[both].astype(np.float64)
    denom = precision + recall
    f = np.zeros(num_frames, dtype=np.float64)
    ok = denom > 0
    f[ok] = 2 * precision[ok] * recall[ok] / denom[ok]
    return f[0] if single else f

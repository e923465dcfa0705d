"""Reading masks from disk: palette / index PNGs, COCO RLE, size checks.

Every error names the offending file, every tolerated quirk warns.
"""
import os.path as osp
import warnings
from typing import Optional, Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

__all__ = [
    'read_index_png', 'read_binary_png', 'conform_to_shape', 'decode_rle',
    'image_size'
]


def read_index_png(path: str) -> np.ndarray:
    """Read an index PNG (palette ``P`` or grey ``L``/``I``) as ``(H, W)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the PNG holds colours instead of indices.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'mask file not found: {path}')
    with Image.open(path) as img:
        if img.mode not in ('P', 'L', '1', 'I', 'I;16'):
            raise ValueError(f'{path}: expected a palette or grey-level '
                             f'index PNG, got mode {img.mode!r}')
        return np.array(img)


def read_binary_png(path: str) -> np.ndarray:
    """Read a predicted mask; any non-zero index or colour is foreground.

    Returns:
        np.ndarray: bool ``(H, W)``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'mask file not found: {path}')
    with Image.open(path) as img:
        arr = np.array(img)
    if arr.ndim == 3:
        arr = arr[..., :3].any(-1)
    return arr != 0


def image_size(path: str) -> Tuple[int, int]:
    """``(H, W)`` of an image, read from its header only."""
    with Image.open(path) as img:
        return img.height, img.width


def conform_to_shape(mask: np.ndarray,
                     shape: Tuple[int, int],
                     path: str,
                     tolerance: int = 2) -> np.ndarray:
    """Bring a ground-truth mask to the frame size ``shape``.

    Real annotations sometimes miss a row or column (DAVIS ``judo/00005.png``
    is 853 pixels wide for an 854-pixel frame). Within ``tolerance`` pixels
    per side the mask is zero-padded (not-object) or cropped at the bottom /
    right, with a warning; beyond it a ``ValueError`` names the file.

    Args:
        mask (np.ndarray): ``(h, w)`` ground truth.
        shape (tuple[int, int]): Frame size ``(H, W)``.
        path (str): File the mask came from (for messages).
        tolerance (int): Largest tolerated difference per side.

    Returns:
        np.ndarray: ``(H, W)`` array of ``mask.dtype``.
    """
    shape = tuple(int(s) for s in shape)
    if mask.shape == shape:
        return mask
    dh, dw = shape[0] - mask.shape[0], shape[1] - mask.shape[1]
    if abs(dh) > tolerance or abs(dw) > tolerance:
        raise ValueError(f'{path}: annotation size {mask.shape} does not '
                         f'match the frame size {shape}')
    warnings.warn(f'{path}: annotation size {mask.shape} differs from the '
                  f'frame size {shape}; padded with background / cropped at '
                  'the bottom-right')
    out = np.zeros(shape, dtype=mask.dtype)
    h, w = min(shape[0], mask.shape[0]), min(shape[1], mask.shape[1])
    out[:h, :w] = mask[:h, :w]
    return out


def decode_rle(rle: Optional[dict],
               shape: Optional[Tuple[int, int]] = None) -> Optional[np.ndarray]:
    """Decode one COCO RLE (``counts`` as str or bytes) to bool ``(H, W)``.

    ``None`` stays ``None`` (MeViS: object absent from the frame).
    """
    if rle is None:
        return None
    if isinstance(rle.get('counts'), list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(rle, *rle['size'])
    elif isinstance(rle.get('counts'), str):
        rle = dict(rle, counts=rle['counts'].encode('ascii'))
    m = mask_utils.decode(rle).astype(bool)
    if shape is not None and m.shape != tuple(shape):
        raise ValueError(f'RLE of size {m.shape} does not match the frame '
                         f'size {tuple(shape)}')
    return m

"""Reading masks from disk: palette / index PNGs, COCO RLE, size checks.

This is the ONE reader of annotation PNGs: the datasets
(:mod:`mmrvos.datasets.transforms.mask_sources`) and the evaluation
(:mod:`.rvos_gt`) both use :func:`read_index_png`. Every error names the
offending file, every tolerated quirk warns with an
:class:`AnnotationRepairWarning` naming the file.

Index PNG policy (pixel value = object id, 0 = background, 255 = void in
DAVIS):

* mode ``P`` (palette), ``L`` (grey), ``I;16`` / ``I`` (16/32-bit grey): the
  values are object ids. Values above 255 raise ``ValueError``.
* a *binary* mask -- mode ``1``, or a grey (not palette) PNG holding only 0
  and 255 (or 0 and 65535 for 16-bit) -- is a foreground/background image,
  not ids. When the video refers to exactly one object the foreground is
  taken as that object (warned repair); otherwise it is ambiguous and raises
  ``ValueError`` naming the file, its mode and the video's objects.
* colour (``RGB``, ``RGBA``, ...), ``LA``, ``PA``, ``F`` and other modes raise
  ``ValueError`` naming the file and its mode.
* a truncated or undecodable PNG raises ``OSError`` naming the file.
"""
import os.path as osp
import warnings
from typing import Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

__all__ = [
    'AnnotationRepairWarning', 'read_index_png', 'read_binary_png', 'conform_to_shape',
    'decode_rle', 'image_size', 'INDEX_MODES', 'DEFAULT_SIZE_TOLERANCE'
]

# modes whose pixel values are object ids
INDEX_MODES = ('P', 'L', 'I', 'I;16', 'I;16B', 'I;16L')
# the known real-data quirk: DAVIS judo/00005.png is 853 px wide for an
# 854-px frame. Larger differences are errors unless a caller raises this.
DEFAULT_SIZE_TOLERANCE = 1


class AnnotationRepairWarning(UserWarning):
    """A loader repaired bad input instead of failing (the message names the
    file)."""


def _decode(path: str, what: str) -> Image.Image:
    """Open and fully decode an image; errors name the file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}')
    img = None
    try:
        img = Image.open(path)
        img.load()  # decode now: truncated files fail here, not later
    except (OSError, SyntaxError, ValueError) as e:
        if img is not None:
            img.close()
        # PIL: UnidentifiedImageError (an OSError), "image file is
        # truncated", zlib / CRC errors (SyntaxError / ValueError)
        raise OSError(f'cannot read {what} {path} (corrupt or truncated '
                      f'file?): {e}') from e
    return img


def _binary_foreground(img: Image.Image, arr: np.ndarray) -> Optional[np.ndarray]:
    """Foreground of a binary (0/255, 0/65535 or 1-bit) mask, else None."""
    if img.mode == '1':
        return arr.astype(bool)
    if img.mode == 'P':
        return None
    values = np.unique(arr)
    for top in (255, 65535):
        if values.size == 2 and values[0] == 0 and values[1] == top:
            return arr == top
    return None


def read_index_png(path: str, video_obj_ids: Optional[Sequence[int]] = None) -> np.ndarray:
    """Read an annotation PNG as object ids ``(H, W)`` (see module doc).

    Args:
        path (str): The PNG.
        video_obj_ids (Sequence[int], optional): Every object id the video's
            expressions refer to. A binary (0/255) mask is read as the one
            object of the video when this holds exactly one id; otherwise a
            binary mask is an error.

    Returns:
        np.ndarray: ``(H, W)`` uint8 object ids.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        OSError: the PNG is truncated or not an image.
        ValueError: colour PNG, unsupported mode, ids above 255, or an
            ambiguous binary mask.
    """
    img = _decode(path, 'annotation PNG')
    with img:
        mode = img.mode
        if mode not in INDEX_MODES and mode != '1':
            raise ValueError(f'{path}: annotation PNG has mode {mode!r}; expected a '
                             'palette (P) or single-channel grey PNG whose pixel values '
                             'are object ids (0 = background). Convert colour masks to '
                             'object ids first')
        arr = np.asarray(img)
        fg = _binary_foreground(img, arr)
    if fg is not None:
        ids = sorted({int(i) for i in (video_obj_ids or ())})
        kind = ('1-bit' if mode == '1' else f'binary {mode!r} (values 0/{int(arr.max())})')
        if len(ids) != 1:
            raise ValueError(f'{path}: {kind} mask, not object ids; the video refers to '
                             f'objects {ids}, so the foreground cannot be assigned to '
                             'one of them. Save the masks as palette PNGs with pixel = '
                             'object id')
        warnings.warn(
            f'{path}: {kind} mask read as object {ids[0]} (the only object '
            'the video refers to); save palette PNGs with pixel = object id '
            'to silence this', AnnotationRepairWarning)
        return np.where(fg, ids[0], 0).astype(np.uint8)
    if arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(f'{path}: annotation PNG (mode {mode!r}) holds values up to '
                             f'{int(arr.max())}; object ids must be 0..255')
        arr = arr.astype(np.uint8)
    return arr


def read_binary_png(path: str) -> np.ndarray:
    """Read a predicted mask; any non-zero index or colour is foreground.

    Returns:
        np.ndarray: bool ``(H, W)``.
    """
    img = _decode(path, 'prediction PNG')
    with img:
        arr = np.asarray(img)
    if arr.ndim == 3:
        arr = arr[..., :3].any(-1)
    return arr != 0


def image_size(path: str) -> Tuple[int, int]:
    """``(H, W)`` of an image, read from its header only; errors name it."""
    try:
        with Image.open(path) as img:
            return img.height, img.width
    except FileNotFoundError:
        raise FileNotFoundError(f'image not found: {path}') from None
    except (OSError, SyntaxError, ValueError) as e:
        raise OSError(f'cannot read image {path}: {e}') from e


def _wxh(shape) -> str:
    return f'{shape[1]}x{shape[0]}'


def conform_to_shape(mask: np.ndarray,
                     shape: Tuple[int, int],
                     path: str,
                     tolerance: int = DEFAULT_SIZE_TOLERANCE,
                     frame: Optional[str] = None) -> np.ndarray:
    """Bring a ground-truth mask to the frame size ``shape``.

    Real annotations sometimes miss a row or column (DAVIS ``judo/00005.png``
    is 853 pixels wide for an 854-pixel frame). Within ``tolerance`` pixels
    per side the mask is zero-padded (not-object) or cropped at the bottom /
    right, with an :class:`AnnotationRepairWarning`; beyond it a
    ``ValueError`` names both files and sizes.

    Args:
        mask (np.ndarray): ``(h, w)`` ground truth.
        shape (tuple[int, int]): Frame size ``(H, W)``.
        path (str): File the mask came from (for messages).
        tolerance (int): Largest tolerated difference per side.
        frame (str, optional): What gave the frame size (the frame image or
            the prediction file), for messages.

    Returns:
        np.ndarray: ``(H, W)`` array of ``mask.dtype``.
    """
    shape = tuple(int(s) for s in shape)
    if mask.shape == shape:
        return mask
    other = f' ({frame})' if frame else ''
    dh, dw = shape[0] - mask.shape[0], shape[1] - mask.shape[1]
    if abs(dh) > tolerance or abs(dw) > tolerance:
        raise ValueError(f'{path}: annotation size {_wxh(mask.shape)} (WxH) '
                         f'does not match the frame size {_wxh(shape)}'
                         f'{other}; only differences up to {tolerance} px '
                         'are repaired')
    warnings.warn(
        f'{path}: annotation size {_wxh(mask.shape)} (WxH) '
        f'differs from the frame size {_wxh(shape)}{other}; '
        'padded with background / cropped at the bottom-right', AnnotationRepairWarning)
    out = np.zeros(shape, dtype=mask.dtype)
    h, w = min(shape[0], mask.shape[0]), min(shape[1], mask.shape[1])
    out[:h, :w] = mask[:h, :w]
    return out


def decode_rle(rle: Optional[dict],
               shape: Optional[Tuple[int, int]] = None,
               source: str = 'RLE') -> Optional[np.ndarray]:
    """Decode one COCO RLE (``counts`` as str, bytes or list) to bool
    ``(H, W)``; errors name ``source``.

    ``None`` stays ``None`` (MeViS: object absent from the frame).
    """
    if rle is None:
        return None
    try:
        if not isinstance(rle, dict) or 'counts' not in rle \
                or 'size' not in rle:
            raise ValueError('expected a dict with "size" and "counts", got '
                             f'{type(rle).__name__}')
        if isinstance(rle.get('counts'), list):  # uncompressed RLE
            rle = mask_utils.frPyObjects(rle, *rle['size'])
        elif isinstance(rle.get('counts'), str):
            rle = dict(rle, counts=rle['counts'].encode('ascii'))
        m = mask_utils.decode(rle).astype(bool)
    except Exception as e:  # pycocotools raises bare Exceptions/TypeErrors
        raise ValueError(f'{source}: cannot decode RLE: {e}') from e
    if shape is not None and m.shape != tuple(shape):
        raise ValueError(f'{source}: RLE of size {m.shape} does not match '
                         f'the frame size {tuple(shape)}')
    return m

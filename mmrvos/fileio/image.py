"""Strict image reading: a truncated or undecodable file is an error naming the file, never a
half-grey frame.

OpenCV and Pillow decode a truncated JPEG without complaint (the missing rows come out grey);
the end-of-image marker of a JPEG and the ``IEND`` chunk of a PNG tell a complete file from a
cut one without decoding it.
"""
import os
import os.path as osp
from typing import Optional, Tuple

import numpy as np

JPEG_START, JPEG_END = b'\xff\xd8', b'\xff\xd9'
PNG_SIGNATURE, PNG_END = b'\x89PNG\r\n\x1a\n', b'IEND\xaeB`\x82'
# bytes at the end of a file searched for the end marker (encoders may pad after it)
TAIL_BYTES = 1024


def _tail(path: str) -> bytes:
    with open(path, 'rb') as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - TAIL_BYTES))
        return f.read()


def check_image_complete(path: str, data: Optional[bytes] = None) -> None:
    """Raise ``OSError`` naming ``path`` when a JPEG lacks its end-of-image marker or a PNG its
    ``IEND`` chunk (a truncated file). Other formats pass unchecked.

    Args:
        path (str): the file (read for its first and last bytes when ``data`` is None).
        data (bytes, optional): the whole file, when already read.
    """
    if data is not None:
        head, tail = data[:8], data[-TAIL_BYTES:]
    else:
        with open(path, 'rb') as f:
            head = f.read(8)
        tail = _tail(path)
    if head[:2] == JPEG_START and JPEG_END not in tail:
        raise OSError(f'corrupt JPEG (truncated, no end-of-image marker): {path}')
    if head == PNG_SIGNATURE and PNG_END not in tail:
        raise OSError(f'corrupt PNG (truncated, no IEND chunk): {path}')


def image_size(path: str) -> Tuple[int, int]:
    """(width, height) of an image from its header only (Pillow reads no pixel data).

    Raises:
        FileNotFoundError: no such file. ValueError: not an image Pillow recognises.
    """
    from PIL import Image, UnidentifiedImageError
    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path}')
    try:
        with Image.open(path) as img:
            return img.size
    except UnidentifiedImageError:
        raise ValueError(f'not an image (unrecognised format): {path}') from None
    except OSError as err:  # e.g. a header cut short
        raise OSError(f'cannot read the image header ({err}): {path}') from None


def read_image_strict(path: str,
                      flag: str = 'color',
                      backend: Optional[str] = None,
                      check_end: bool = True) -> np.ndarray:
    """Decode an image with :func:`mmcv.imfrombytes`, refusing missing, truncated and
    undecodable files.

    Args:
        path (str): image file.
        flag (str): mmcv colour flag ('color' gives (H, W, 3) uint8 BGR).
        backend (str, optional): mmcv decoding backend.
        check_end (bool): check the JPEG/PNG end marker (:func:`check_image_complete`).

    Returns:
        np.ndarray: the decoded image.

    Raises:
        FileNotFoundError: no such file. OSError: truncated or undecodable (names the file).
    """
    import mmcv
    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path}')
    with open(path, 'rb') as f:
        data = f.read()
    if check_end:
        check_image_complete(path, data)
    img = mmcv.imfrombytes(data, flag=flag, backend=backend)
    if img is None or img.size == 0:
        raise OSError(f'cannot decode image (corrupt or not an image): {path}')
    return img

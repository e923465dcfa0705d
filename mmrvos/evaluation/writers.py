"""Result writers: palette PNGs per frame in the server layout, and the zip.

Layout written under ``out_dir``::

    <out_dir>/<video_id>/<exp_id>/<frame_id>.png   palette PNG, 1 = object

Server zips (:func:`make_submission_zip`):

* Ref-YouTube-VOS: entries ``Annotations/<video>/<exp_id>/<frame>.png``
  (``arc_root='Annotations'``, the preset ``'ref_youtube_vos'``);
* MeViS valid: entries ``<video>/<exp_id>/<frame>.png`` at the zip root
  (``arc_root=''``, the preset ``'mevis'``).

An existing non-empty output folder or zip is never replaced unless
``overwrite=True`` (``--overwrite`` on the command line).
"""
import os
import os.path as osp
import shutil
import zipfile
from typing import Optional

import numpy as np
from PIL import Image

__all__ = [
    'voc_palette', 'prepare_output_dir', 'save_mask_png', 'RVOSResultWriter', 'make_submission_zip',
    'ZIP_ROOTS'
]

ZIP_ROOTS = {'ref_youtube_vos': 'Annotations', 'mevis': ''}


def voc_palette(num: int = 256) -> list:
    """The PASCAL VOC / DAVIS palette (index 1 = (128, 0, 0), ...), flat."""
    pal = []
    for i in range(num):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


_PALETTE = voc_palette()


def prepare_output_dir(path: str, overwrite: bool = False) -> str:
    """Create ``path``; refuse to reuse a non-empty one unless ``overwrite``.

    Raises:
        FileExistsError: ``path`` exists, is not empty, and ``overwrite`` is
            false.
    """
    if osp.exists(path):
        if not osp.isdir(path):
            raise FileExistsError(f'{path} exists and is not a folder')
        if os.listdir(path):
            if not overwrite:
                raise FileExistsError(f'output folder {path} exists and is not empty; pass '
                                      'overwrite=True (--overwrite) to replace it')
            shutil.rmtree(path)
    os.makedirs(path, exist_ok=True)
    return path


def save_mask_png(mask: np.ndarray, path: str) -> None:
    """Save a bool / index ``(H, W)`` mask as a palette PNG (0 bg, 1 fg)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'{path}: mask must be (H, W), got {mask.shape}')
    img = Image.fromarray(mask.astype(np.uint8), mode='P')
    img.putpalette(_PALETTE)
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    img.save(path)


class RVOSResultWriter:
    """Writes one PNG per (video, expression, frame) under ``out_dir``.

    Args:
        out_dir (str): Output folder (created; see :func:`prepare_output_dir`).
        overwrite (bool): Allow replacing a non-empty ``out_dir``.
        prepare (bool): Check / create ``out_dir`` now (set False on
            non-main ranks, which only write into it).
    """

    def __init__(self, out_dir: str, overwrite: bool = False, prepare: bool = True) -> None:
        self.out_dir = out_dir
        if prepare:
            prepare_output_dir(out_dir, overwrite)
        else:
            os.makedirs(out_dir, exist_ok=True)

    def path(self, video_id: str, exp_id: str, frame_id: str) -> str:
        return osp.join(self.out_dir, str(video_id), str(exp_id), f'{frame_id}.png')

    def write(self, video_id: str, exp_id: str, frame_id: str, mask: np.ndarray) -> str:
        """Save ``mask`` (bool ``(H, W)``); returns the file path."""
        p = self.path(video_id, exp_id, frame_id)
        save_mask_png(mask, p)
        return p


def make_submission_zip(out_dir: str,
                        zip_path: str,
                        arc_root: Optional[str] = 'Annotations',
                        overwrite: bool = False) -> str:
    """Zip the PNGs of ``out_dir`` for an evaluation server.

    Args:
        out_dir (str): Folder written by :class:`RVOSResultWriter`.
        zip_path (str): Zip file to create.
        arc_root (str): Folder inside the zip (``'Annotations'`` for
            Ref-YouTube-VOS, ``''`` for MeViS), or a key of ``ZIP_ROOTS``.
        overwrite (bool): Allow replacing an existing zip.

    Returns:
        str: ``zip_path``.
    """
    arc_root = ZIP_ROOTS.get(arc_root, arc_root) or ''
    if osp.exists(zip_path) and not overwrite:
        raise FileExistsError(f'{zip_path} exists; pass overwrite=True '
                              '(--overwrite) to replace it')
    if not osp.isdir(out_dir):
        raise FileNotFoundError(f'result folder not found: {out_dir}')
    os.makedirs(osp.dirname(osp.abspath(zip_path)), exist_ok=True)
    with zipfile.ZipFile(zip_path, 'w', zipfile.ZIP_DEFLATED) as zf:
        for root, dirs, files in os.walk(out_dir):
            dirs.sort()
            for name in sorted(files):
                if not name.endswith('.png'):
                    continue
                full = osp.join(root, name)
                rel = osp.relpath(full, out_dir)
                zf.write(full, osp.join(arc_root, rel) if arc_root else rel)
    return zip_path

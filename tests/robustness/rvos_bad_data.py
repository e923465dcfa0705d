"""Small Ref-YouTube-VOS-layout datasets written in tmp_path, for the bad-input tests.

One video ``v`` of ``frames`` (32x24 JPEGs), palette PNG annotations (pixel = object id) on
the frames given in ``masks``, and ``meta_expressions.json``. Each test then damages one
thing (a mask's mode or size, the JSON, a frame) and checks the outcome.
"""
import json
import os
import os.path as osp
from typing import Dict, Optional

import numpy as np
from PIL import Image

from mmrvos.datasets.synthetic import davis_palette

W, H = 32, 24
FRAMES = ('00000', '00001', '00002')


def object_ids(frame: int, obj_ids=(1, )) -> np.ndarray:
    """(H, W) uint8 id map: object k is a 6x5 box at x = 4 + 10 (k - 1) + frame."""
    ids = np.zeros((H, W), np.uint8)
    for k in obj_ids:
        x = 4 + 10 * (k - 1) + frame
        ids[8:13, x:x + 6] = k
    return ids


def save_png(path: str, arr: np.ndarray, mode: str = 'P') -> None:
    """Write ``arr`` as a PNG of ``mode`` ('P' gets the DAVIS palette)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    if mode == '1':
        img = Image.fromarray(arr.astype(bool))
    elif mode == 'I;16':
        img = Image.fromarray(arr.astype(np.uint16))
        assert img.mode.startswith('I;16'), img.mode
    elif mode == 'P':
        img = Image.fromarray(arr.astype(np.uint8), mode='P')
        img.putpalette(davis_palette())  # without it PIL may re-index the values
    else:  # 'L', 'RGB', 'RGBA', 'LA'
        img = Image.fromarray(arr.astype(np.uint8))
        if img.mode != mode:
            img = img.convert(mode)
    img.save(path)


def save_frame(path: str, size=(W, H)) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), np.uint8)).save(path)


def write_meta(root: str, videos: dict, name: str = 'meta_expressions.json') -> str:
    path = osp.join(root, name)
    with open(path, 'w') as f:
        json.dump(dict(videos=videos), f)
    return path


def make_root(root: str,
              exps: Optional[Dict[str, dict]] = None,
              obj_ids=(1, ),
              frames=FRAMES,
              masks: Optional[Dict[str, np.ndarray]] = None,
              video: str = 'v') -> str:
    """Write one video; ``masks`` defaults to every frame annotated with ``obj_ids``."""
    exps = exps or {
        str(i): dict(exp=f'object number {k}', obj_id=str(k))
        for i, k in enumerate(obj_ids)
    }
    if masks is None:
        masks = {f: object_ids(t, obj_ids) for t, f in enumerate(frames)}
    for f in frames:
        save_frame(osp.join(root, 'JPEGImages', video, f + '.jpg'))
    for f, ids in masks.items():
        save_png(osp.join(root, 'Annotations', video, f + '.png'), ids)
    write_meta(root, {video: dict(frames=list(frames), expressions=exps)})
    return root


def png_path(root: str, frame: str = '00001', video: str = 'v') -> str:
    return osp.join(root, 'Annotations', video, frame + '.png')


def frame_path(root: str, frame: str = '00001', video: str = 'v') -> str:
    return osp.join(root, 'JPEGImages', video, frame + '.jpg')

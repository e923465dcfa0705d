"""Ground truth of referring expressions, read from the Ref-YouTube-VOS layout.

Layout (``data_root``)::

    meta_expressions.json   {"videos": {vid: {"frames": [...], "expressions":
                             {exp_id: {"exp": str, "obj_id": str | [str],
                                       "anno_id": [int] (MeViS)}}}}}
    Annotations/<vid>/<frame>.png    palette PNG, pixel = obj_id (255 = void)
    mask_dict.json (MeViS)           {anno_id: [RLE or null per frame]}

Which frames count for an expression:

* PNG layout (Ref-YouTube-VOS, Ref-DAVIS, synthetic benchmark): sparse
  annotation. A frame counts when its PNG exists *and* contains at least one of
  the expression's objects; a missing PNG or an absent id means "not annotated"
  (not "empty"). The target is the union of the expression's objects present.
* ``mask_dict`` layout (MeViS): every frame counts; a ``null`` RLE means the
  object is absent (empty target), as in the official MeViS evaluation.
"""
import json
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import numpy as np

from .mask_io import conform_to_shape, decode_rle, read_index_png

__all__ = ['RVOSGroundTruth']


def _obj_ids(expression: dict) -> List[int]:
    ids = expression.get('obj_id')
    if ids is None:
        return []
    if not isinstance(ids, (list, tuple)):
        ids = [ids]
    return [int(i) for i in ids]


class RVOSGroundTruth:
    """Per-frame targets of referring expressions.

    Args:
        data_root (str): Folder holding the meta file and annotations.
        meta_file (str): Expressions file, relative to ``data_root``.
        ann_dir (str): PNG annotation folder, relative to ``data_root``.
        mask_dict_file (str, optional): MeViS ``mask_dict.json`` (relative to
            ``data_root``); when given, targets come from it, not from PNGs.
        void_label (int, optional): PNG value marking void pixels (DAVIS:
            255), excluded from J and F. ``None`` disables void handling.
        size_tolerance (int): Annotation / frame size difference (pixels per
            side) that is padded or cropped with a warning instead of raising.
        cache_size (int): Decoded annotation PNGs kept in memory.
    """

    def __init__(self,
                 data_root: str,
                 meta_file: str = 'meta_expressions.json',
                 ann_dir: str = 'Annotations',
                 mask_dict_file: Optional[str] = None,
                 void_label: Optional[int] = 255,
                 size_tolerance: int = 2,
                 cache_size: int = 32) -> None:
        self.data_root = data_root
        self.meta_path = osp.join(data_root, meta_file)
        self.ann_dir = osp.join(data_root, ann_dir)
        self.void_label = void_label
        self.size_tolerance = size_tolerance
        if not osp.isfile(self.meta_path):
            raise FileNotFoundError(
                f'expression file not found: {self.meta_path}')
        with open(self.meta_path) as f:
            meta = json.load(f)
        if 'videos' not in meta:
            raise ValueError(f'{self.meta_path}: no "videos" key')
        self.videos: Dict[str, dict] = meta['videos']
        self.mask_dict = None
        self.mask_dict_path = None
        if mask_dict_file is not None:
            self.mask_dict_path = osp.join(data_root, mask_dict_file)
            if not osp.isfile(self.mask_dict_path):
                raise FileNotFoundError(
                    f'mask dict not found: {self.mask_dict_path}')
            with open(self.mask_dict_path) as f:
                self.mask_dict = json.load(f)
        self._cache: 'OrderedDict[str, Optional[np.ndarray]]' = OrderedDict()
        self._cache_size = cache_size

    # ------------------------------------------------------------ meta
    def video(self, video_id: str) -> dict:
        """Meta entry of a video; ``KeyError`` naming the meta file."""
        try:
            return self.videos[video_id]
        except KeyError:
            raise KeyError(f'unknown video id {video_id!r}: not in '
                           f'{self.meta_path}') from None

    def expression(self, video_id: str, exp_id: str) -> dict:
        """Meta entry of an expression; ``KeyError`` naming the meta file."""
        exps = self.video(video_id)['expressions']
        try:
            return exps[str(exp_id)]
        except KeyError:
            raise KeyError(f'unknown expression {exp_id!r} of video '
                           f'{video_id!r}: not in {self.meta_path}') from None

    def expressions(self) -> List[Tuple[str, str]]:
        """All ``(video_id, exp_id)`` pairs in file order."""
        return [(v, e) for v, m in self.videos.items()
                for e in m['expressions']]

    def annotator(self, video_id: str, exp_id: str) -> int:
        """Ref-DAVIS annotator (0..3) of an expression.

        The ``annotator`` field when present, else the expression's position
        in its video modulo 4 (the Ref-DAVIS order used by ReferFormer and
        ReferDINO: object-major, 4 expressions per object).
        """
        exp = self.expression(video_id, exp_id)
        if 'annotator' in exp:
            return int(exp['annotator'])
        order = list(self.video(video_id)['expressions'])
        return order.index(str(exp_id)) % 4

    def frame_path(self, video_id: str, frame_id: str) -> str:
        return osp.join(self.ann_dir, video_id, f'{frame_id}.png')

    # ------------------------------------------------------------ targets
    def _png(self, video_id: str, frame_id: str) -> Optional[np.ndarray]:
        path = self.frame_path(video_id, frame_id)
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        arr = read_index_png(path) if osp.isfile(path) else None
        self._cache[path] = arr
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return arr

    def annotation(self, video_id: str, frame_id: str) -> Optional[np.ndarray]:
        """Raw index PNG ``(h, w)`` of a frame (cached), ``None`` if absent."""
        return self._png(video_id, str(frame_id))

    def is_annotated(self, video_id: str, exp_id: str, frame_id: str) -> bool:
        """Whether ``frame_id`` counts for the expression (see module doc)."""
        if self.mask_dict is not None:
            return str(frame_id) in self.video(video_id)['frames']
        ann = self._png(video_id, str(frame_id))
        if ann is None:
            return False
        ids = _obj_ids(self.expression(video_id, exp_id))
        return bool(np.isin(ann, ids).any())

    def annotated_frames(self, video_id: str, exp_id: str) -> List[str]:
        """Frames of the video that count for the expression, in order."""
        frames = self.video(video_id)['frames']
        return [
            f for f in frames if self.is_annotated(video_id, exp_id, f)
        ]

    def target(
        self,
        video_id: str,
        exp_id: str,
        frame_id: str,
        shape: Optional[Tuple[int, int]] = None
    ) -> Optional[Tuple[np.ndarray, Optional[np.ndarray]]]:
        """Target mask of an expression on one frame.

        Args:
            video_id (str): Video.
            exp_id (str): Expression.
            frame_id (str): Frame name, e.g. ``'00005'``.
            shape (tuple[int, int], optional): Frame size ``(H, W)`` to
                conform the annotation to (see :func:`conform_to_shape`).

        Returns:
            tuple | None: ``(gt, void)`` with ``gt`` bool ``(H, W)`` and
            ``void`` bool ``(H, W)`` or ``None``; ``None`` when the frame is
            not annotated for the expression.
        """
        exp = self.expression(video_id, exp_id)
        frame_id = str(frame_id)
        if self.mask_dict is not None:
            return self._mevis_target(video_id, exp, frame_id, shape)
        ann = self._png(video_id, frame_id)
        if ann is None:
            return None
        path = self.frame_path(video_id, frame_id)
        if shape is not None:
            ann = conform_to_shape(ann, shape, path, self.size_tolerance)
        gt = np.isin(ann, _obj_ids(exp))
        if not gt.any():
            return None
        void = None
        if self.void_label is not None:
            void = ann == self.void_label
            if not void.any():
                void = None
        return gt, void

    def _mevis_target(self, video_id, exp, frame_id, shape):
        frames = self.video(video_id)['frames']
        if frame_id not in frames:
            return None
        idx = frames.index(frame_id)
        anno_ids = exp.get('anno_id')
        if anno_ids is None:
            raise KeyError(f'{self.meta_path}: expression of video '
                           f'{video_id!r} has no "anno_id" (needed with '
                           f'{self.mask_dict_path})')
        gt = None
        for anno_id in anno_ids:
            try:
                rles = self.mask_dict[str(anno_id)]
            except KeyError:
                raise KeyError(f'anno_id {anno_id} of video {video_id!r} not '
                               f'in {self.mask_dict_path}') from None
            m = decode_rle(rles[idx])
            if m is None:
                continue
            gt = m if gt is None else gt | m
        if gt is None:
            if shape is None:
                raise ValueError(
                    f'frame {frame_id} of {video_id!r}: every object is '
                    'absent; pass the frame shape to build the empty target')
            return np.zeros(tuple(shape), bool), None
        if shape is not None:
            gt = conform_to_shape(gt, shape,
                                  f'{self.mask_dict_path}[{video_id}/'
                                  f'{frame_id}]', self.size_tolerance)
        return gt, None

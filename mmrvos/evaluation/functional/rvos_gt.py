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

An expression of the PNG layout that no frame counts for (no ``obj_id``, or
its objects are in no annotation PNG) cannot be scored;
:meth:`RVOSGroundTruth.unscorable_reason` says why, and the callers refuse to
drop it silently (``strict``). Annotation PNGs are read with the shared
:func:`~.mask_io.read_index_png` (a 0/255 mask is read as the video's only
object, with a warning, and is an error when the video has several).
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import numpy as np

from .mask_io import DEFAULT_SIZE_TOLERANCE, conform_to_shape, decode_rle, read_index_png
from .meta_io import check_videos, load_json, parse_obj_ids

__all__ = ['RVOSGroundTruth']


def _obj_ids(expression: dict) -> List[int]:
    """``obj_id`` of a (checked) expression as ``list[int]``."""
    return parse_obj_ids(expression.get('obj_id'), 'obj_id')


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
            side) that is padded or cropped with a warning instead of raising
            (default 1: DAVIS ``judo/00005.png`` is 853 px wide for 854).
        cache_size (int): Decoded annotation PNGs kept in memory.
    """

    def __init__(self,
                 data_root: str,
                 meta_file: str = 'meta_expressions.json',
                 ann_dir: str = 'Annotations',
                 mask_dict_file: Optional[str] = None,
                 void_label: Optional[int] = 255,
                 size_tolerance: int = DEFAULT_SIZE_TOLERANCE,
                 cache_size: int = 32) -> None:
        self.data_root = data_root
        self.meta_path = osp.join(data_root, meta_file)
        self.ann_dir = osp.join(data_root, ann_dir)
        self.void_label = void_label
        self.size_tolerance = size_tolerance
        self.videos: Dict[str,
                          dict] = check_videos(load_json(self.meta_path, 'videos'), self.meta_path)
        self.mask_dict = None
        self.mask_dict_path = None
        if mask_dict_file is not None:
            self.mask_dict_path = osp.join(data_root, mask_dict_file)
            self.mask_dict = load_json(self.mask_dict_path)
            if not isinstance(self.mask_dict, dict):
                raise ValueError(f'{self.mask_dict_path}: expected a JSON '
                                 'object anno_id -> list of RLEs')
        self._check_targets()
        self._cache: 'OrderedDict[str, Optional[np.ndarray]]' = OrderedDict()
        self._cache_size = cache_size

    def _check_targets(self) -> None:
        """Target keys of every expression: ``obj_id`` (PNG layout, ids
        1..255) or ``anno_id`` (MeViS, each in ``mask_dict`` with one RLE per
        frame); errors name the file, video and expression."""
        self._video_obj_ids: Dict[str, List[int]] = {}
        for vid, v in self.videos.items():
            ids = set()
            for eid, e in v['expressions'].items():
                where = f'{self.meta_path}: video {vid!r} expression {eid!r}'
                if self.mask_dict is None:  # (MeViS obj ids are 0-based)
                    ids.update(parse_obj_ids(e.get('obj_id'), where))
                    continue
                anno = e.get('anno_id')
                if anno is None:
                    raise ValueError(f'{where}: no "anno_id" (needed with '
                                     f'{self.mask_dict_path})')
                for a in anno if isinstance(anno, list) else [anno]:
                    rles = self.mask_dict.get(str(a))
                    if rles is None:
                        raise KeyError(f'{where}: anno_id {a} not in '
                                       f'{self.mask_dict_path}')
                    if not isinstance(rles, list) \
                            or len(rles) != len(v['frames']):
                        n = len(rles) if isinstance(rles, list) else 'no list'
                        raise ValueError(f'{self.mask_dict_path}: anno_id {a} has {n} '
                                         f'masks for the {len(v["frames"])} frames of '
                                         f'video {vid!r}')
            self._video_obj_ids[vid] = sorted(ids)

    def video_obj_ids(self, video_id: str) -> List[int]:
        """Every object id the video's expressions refer to."""
        self.video(video_id)
        return self._video_obj_ids[video_id]

    def unscorable_reason(self, video_id: str, exp_id: str) -> Optional[str]:
        """Why no frame counts for an expression (None when some frame does).

        MeViS (``mask_dict``): every frame counts, also when its objects are
        null everywhere (empty target, the official protocol)."""
        if self.mask_dict is not None:
            return None if self.video(video_id)['frames'] else 'no frames'
        if self.annotated_frames(video_id, exp_id):
            return None
        ids = _obj_ids(self.expression(video_id, exp_id))
        if not ids:
            return 'no "obj_id"'
        folder = osp.join(self.ann_dir, video_id)
        pngs = [
            f for f in self.video(video_id)['frames'] if osp.isfile(self.frame_path(video_id, f))
        ]
        if not pngs:
            return (f'no annotation PNG of its frames in {folder}')
        return (f'obj_id {ids} is in none of the {len(pngs)} annotation '
                f'PNGs in {folder}')

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
        return [(v, e) for v, m in self.videos.items() for e in m['expressions']]

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
        arr = read_index_png(path, self._video_obj_ids.get(video_id)) \
            if osp.isfile(path) else None
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
        return [f for f in frames if self.is_annotated(video_id, exp_id, f)]

    def target(self,
               video_id: str,
               exp_id: str,
               frame_id: str,
               shape: Optional[Tuple[int, int]] = None,
               frame: Optional[str] = None) -> Optional[Tuple[np.ndarray, Optional[np.ndarray]]]:
        """Target mask of an expression on one frame.

        Args:
            video_id (str): Video.
            exp_id (str): Expression.
            frame_id (str): Frame name, e.g. ``'00005'``.
            shape (tuple[int, int], optional): Frame size ``(H, W)`` to
                conform the annotation to (see :func:`conform_to_shape`).
            frame (str, optional): The file that gave ``shape`` (frame image
                or prediction), named in size errors.

        Returns:
            tuple | None: ``(gt, void)`` with ``gt`` bool ``(H, W)`` and
            ``void`` bool ``(H, W)`` or ``None``; ``None`` when the frame is
            not annotated for the expression.
        """
        exp = self.expression(video_id, exp_id)
        frame_id = str(frame_id)
        if self.mask_dict is not None:
            return self._mevis_target(video_id, exp, frame_id, shape, frame)
        ann = self._png(video_id, frame_id)
        if ann is None:
            return None
        path = self.frame_path(video_id, frame_id)
        if shape is not None:
            ann = conform_to_shape(ann, shape, path, self.size_tolerance, frame)
        gt = np.isin(ann, _obj_ids(exp))
        if not gt.any():
            return None
        void = None
        if self.void_label is not None:
            void = ann == self.void_label
            if not void.any():
                void = None
        return gt, void

    def _mevis_target(self, video_id, exp, frame_id, shape, frame=None):
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
            m = decode_rle(
                rles[idx], source=f'{self.mask_dict_path}: '
                f'anno_id {anno_id} frame {frame_id}')
            if m is None:
                continue
            gt = m if gt is None else gt | m
        if gt is None:
            if shape is None:
                raise ValueError(f'frame {frame_id} of {video_id!r}: every object is '
                                 'absent; pass the frame shape to build the empty target')
            return np.zeros(tuple(shape), bool), None
        if shape is not None:
            gt = conform_to_shape(gt, shape, f'{self.mask_dict_path}[{video_id}/'
                                  f'{frame_id}]', self.size_tolerance, frame)
        return gt, None

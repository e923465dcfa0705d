"""MeViS: motion expressions, multi-object targets, masks as COCO RLE in ``mask_dict.json``."""
import os.path as osp
from typing import Dict, List, Optional

from mmdet.registry import DATASETS

from mmrvos.evaluation.functional.meta_io import check_frame_names, check_videos
from .base_rvos import BaseRVOSDataset, check_frames_exist, load_json


@DATASETS.register_module()
class MeViSDataset(BaseRVOSDataset):
    """MeViS: one sample per (video, expression); the target is the union of its objects.

    Layout (``data_root`` relative; splits ``train``, ``valid_u`` with masks, ``valid`` without)::

        <split>/JPEGImages/<vid>/<frame>.jpg
        <split>/meta_expressions.json
            {"videos": {vid: {"expressions": {exp_id: {"exp": str, "obj_id": [int],
                                                       "anno_id": [int]}},
                              "frames": [frame names]}}}
        <split>/mask_dict.json      {anno_id: [COCO RLE or null per frame]}   (train, valid_u)

    Every frame of a video is annotated (dense); ``null`` means the object is absent on that
    frame (``annotated=True``, ``valid=False`` when all objects of the expression are absent).
    An expression whose objects are null on every frame is kept for evaluation (empty target,
    as the official MeViS evaluation scores it) but would drop out of training (no clip shows
    it): ``strict`` (default) raises listing them, ``strict=False`` drops them with a warning.
    ``mask_dict.json`` is loaded once (it is large for train: a few GB of RAM) and shared by the
    samples; ``get_data_info`` attaches the RLEs of the sample's objects.

    Args:
        ann_file (str): meta_expressions.json.
        mask_file (str, optional): mask_dict.json; None for the ``valid`` split (no masks).
        data_prefix (dict): ``img`` = JPEGImages directory.
        min_frames (int): drop videos with fewer frames (the official code drops 1-frame
            videos from training). Defaults to 1.
    """

    METAINFO = dict(classes=('object', ), dataset_name='mevis')

    def __init__(self,
                 *args,
                 mask_file: Optional[str] = None,
                 data_prefix: dict = dict(img='JPEGImages'),
                 img_suffix: str = '.jpg',
                 min_frames: int = 1,
                 **kwargs) -> None:
        self.mask_file = mask_file
        self.img_suffix = img_suffix
        self.min_frames = min_frames
        self.mask_dict: Dict[str, list] = {}
        super().__init__(*args, data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        videos = check_videos(load_json(self.ann_file, 'videos'), self.ann_file)
        mask_path = self._join(self.mask_file)
        if mask_path is not None:
            self.mask_dict = load_json(mask_path)
            if not isinstance(self.mask_dict, dict):
                raise ValueError(f'{mask_path}: expected a JSON object anno_id -> RLE list')
        elif not self.test_mode:
            raise ValueError('MeViSDataset: mask_file is required for training')
        img_root = self.data_prefix.get('img', '')
        data_list, dropped = [], []
        for vid, vdata in videos.items():
            where_vid = f'{self.ann_file}: video {vid!r}'
            frames = check_frame_names(vdata['frames'], where_vid)
            if mask_path and frames != list(vdata['frames']):
                # mask_dict's RLE lists follow the order of "frames"
                raise ValueError(f'{where_vid}: "frames" is not in sorted (temporal) order; '
                                 f'the RLE lists of {mask_path} follow that order')
            if len(frames) < self.min_frames:
                continue
            img_dir = osp.join(img_root, vid)
            if self.check_files:
                check_frames_exist(img_dir, frames, self.img_suffix)
            for exp_id, exp in vdata['expressions'].items():
                where = f'{where_vid} expression {exp_id!r}'
                text = self.check_text(exp.get('exp'), where)
                if text is None:
                    continue
                anno_ids = self._ids(exp.get('anno_id'), 'anno_id', where) if mask_path else []
                for a in anno_ids:
                    if a not in self.mask_dict:
                        raise KeyError(f'{where}: unknown anno_id {a} (not in {mask_path})')
                    rles = self.mask_dict[a]
                    if not isinstance(rles, list) or len(rles) != len(frames):
                        num = len(rles) if isinstance(rles, list) else type(rles).__name__
                        raise ValueError(f'{mask_path}: anno_id {a} has {num} masks for the '
                                         f'{len(frames)} frames of video {vid!r}')
                if mask_path and not anno_ids and not self.test_mode:
                    raise ValueError(f'{where}: no anno_id (required for training)')
                if anno_ids and not self.test_mode and all(r is None for a in anno_ids
                                                           for r in self.mask_dict[a]):
                    # evaluation counts such frames as empty targets (MeViS protocol);
                    # training would filter every clip of it out
                    dropped.append((vid, str(exp_id), f'every mask of anno_id {anno_ids} is '
                                    f'null in {mask_path} (the target is in no frame)'))
                    continue
                data_list.append(
                    dict(
                        video_id=vid,
                        exp_id=str(exp_id),
                        text=text,
                        exp_type=exp.get('exp_type'),
                        annotator=None,
                        obj_ids=[int(o) for o in self._ids(exp.get('obj_id'), 'obj_id', where)],
                        anno_ids=anno_ids,
                        has_masks=mask_path is not None,
                        frame_ids=frames,
                        img_dir=img_dir))
        self.report_dropped(dropped, self.ann_file)
        return data_list

    @staticmethod
    def _ids(value, key: str, where: str) -> List[str]:
        """MeViS ``anno_id`` / ``obj_id`` (int or list of ints, 0-based) as strings."""
        if value is None:
            return []
        values = value if isinstance(value, (list, tuple)) else [value]
        out = []
        for v in values:
            if isinstance(v, bool) or not str(v).lstrip('-').isdigit():
                raise ValueError(f'{where}: {key} {v!r} is not an integer')
            out.append(str(int(v)))
        return out

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        img_dir = info.pop('img_dir')
        info['img_paths'] = [osp.join(img_dir, f + self.img_suffix) for f in info['frame_ids']]
        if info.pop('has_masks'):
            source = self._join(self.mask_file)
            rles = [self.mask_dict[a] for a in info['anno_ids']]
            info['mask_refs'] = [
                dict(type='rle', rles=[r[t] for r in rles], source=source)
                for t in range(len(info['frame_ids']))
            ]
        else:
            info['mask_refs'] = [None] * len(info['frame_ids'])
        return info

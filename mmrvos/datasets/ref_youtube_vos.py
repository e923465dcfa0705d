"""Ref-YouTube-VOS (and every dataset in its layout: converted Ref-DAVIS17, the toy benchmark)."""
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmdet.registry import DATASETS

from .base_rvos import BaseRVOSDataset, check_frames_exist, list_dir, load_json

# keys used to build img_paths / mask_refs in get_data_info, not passed to the pipeline
_COMPACT_KEYS = ('img_dir', 'img_suffix', 'ann_dir', 'ann_frames', 'sparse')


@DATASETS.register_module()
class RefYouTubeVOSDataset(BaseRVOSDataset):
    """Ref-YouTube-VOS: one sample per (video, expression).

    Layout (``data_root`` relative)::

        meta_expressions/{train,valid,test}/meta_expressions.json
            {"videos": {vid: {"expressions": {exp_id: {"exp": str, "obj_id": str,
                                                       ["exp_type": str]}},
                              "frames": [frame names]}}}
        {train,valid}/JPEGImages/<vid>/<frame>.jpg
        train/Annotations/<vid>/<frame>.png        palette PNG, pixel = object id
        train/meta.json      {"videos": {vid: {"objects": {obj_id: {"category": str, ...}}}}}

    Splits: train (``ann_file='meta_expressions/train/meta_expressions.json'``); valid = the
    competition's valid file minus the videos of the test file (202 videos): pass
    ``exclude_ann_file='meta_expressions/test/meta_expressions.json'``; test = the test file.
    valid/test expressions have no ``obj_id`` and no annotation (masks come from the server).

    Sparse annotation: a frame without a PNG carries no annotation. With
    ``sparse_annotations=True`` (default; e.g. the real ``davis-judo`` fixture) a PNG that lacks
    the target's id does not annotate the target either (``annotated=False``); with ``False``
    (densely annotated data such as the toy benchmark) it means the target is absent on that
    frame (``annotated=True, valid=False``).

    Args:
        ann_file (str): meta_expressions.json.
        meta_file (str, optional): meta.json with object categories; when given, every
            expression's obj_id must be one of the video's objects.
        exclude_ann_file (str, optional): meta_expressions.json whose videos are dropped.
        data_prefix (dict): ``img`` (JPEGImages dir) and ``ann`` (Annotations dir).
        img_suffix (str): frame file suffix. Defaults to '.jpg'.
        sparse_annotations (bool): see above. Defaults to True.
        expected_num_videos (int, optional): raise if the split does not hold this many videos
            (202 for the Ref-YouTube-VOS valid split).
        exp_types (Sequence[str], optional): keep only expressions whose ``exp_type`` is one
            of these (e.g. the toy benchmark's single-frame stage drops ``'motion'``, which no
            single frame can resolve). None keeps all.
        **kwargs: :class:`BaseRVOSDataset` / mmengine ``BaseDataset`` arguments.
    """

    METAINFO = dict(classes=('object', ), dataset_name='ref_youtube_vos')

    def __init__(self, *args, meta_file: Optional[str] = None,
                 exclude_ann_file: Optional[str] = None,
                 data_prefix: dict = dict(img='JPEGImages', ann='Annotations'),
                 img_suffix: str = '.jpg', sparse_annotations: bool = True,
                 expected_num_videos: Optional[int] = None,
                 exp_types: Optional[Sequence[str]] = None, **kwargs) -> None:
        self.meta_file = meta_file
        self.exp_types = None if exp_types is None else tuple(exp_types)
        self.exclude_ann_file = exclude_ann_file
        self.img_suffix = img_suffix
        self.sparse_annotations = sparse_annotations
        self.expected_num_videos = expected_num_videos
        super().__init__(*args, data_prefix=data_prefix, **kwargs)

    # ------------------------------------------------------------------ hooks for subclasses
    def annotator_of(self, exp_id: str, exp: dict, video: dict) -> Optional[int]:
        """Annotator index of an expression (None for Ref-YouTube-VOS)."""
        return None

    def keep_expression(self, info: dict) -> bool:
        return self.exp_types is None or info.get('exp_type') in self.exp_types

    # ------------------------------------------------------------------ loading
    def _videos(self) -> Dict[str, dict]:
        videos = load_json(self.ann_file, 'videos')['videos']
        if self.exclude_ann_file is not None:
            path = self._join(self.exclude_ann_file)
            excluded = set(load_json(path, 'videos')['videos'])
            videos = {k: v for k, v in videos.items() if k not in excluded}
        if self.expected_num_videos is not None and len(videos) != self.expected_num_videos:
            raise ValueError(f'{self.ann_file}: {len(videos)} videos after exclusion, expected '
                             f'{self.expected_num_videos}')
        return videos

    def load_data_list(self) -> List[dict]:
        videos = self._videos()
        objects = None
        if self.meta_file is not None:
            meta_path = self._join(self.meta_file)
            objects = {k: v.get('objects', {})
                       for k, v in load_json(meta_path, 'videos')['videos'].items()}
        img_root, ann_root = self.data_prefix.get('img', ''), self.data_prefix.get('ann', '')
        data_list = []
        for vid, vdata in videos.items():
            where_vid = f'{self.ann_file}: video {vid!r}'
            if 'frames' not in vdata or 'expressions' not in vdata:
                raise ValueError(f'{where_vid} lacks "frames" or "expressions"')
            frames = sorted(vdata['frames'])
            img_dir = osp.join(img_root, vid)
            if self.check_files:
                check_frames_exist(img_dir, frames, self.img_suffix)
            ann_dir = osp.join(ann_root, vid) if ann_root else None
            pngs = list_dir(ann_dir) if ann_dir else set()
            ann_frames = [f for f in frames if f + '.png' in pngs]
            for exp_id, exp in vdata['expressions'].items():
                where = f'{where_vid} expression {exp_id!r}'
                text = self.check_text(exp.get('exp'), where)
                if text is None:
                    continue
                obj_ids = self.parse_obj_ids(exp.get('obj_id'), where)
                if not obj_ids and not self.test_mode:
                    raise ValueError(f'{where}: no obj_id (required for training)')
                category = None
                if objects is not None and obj_ids:
                    vobjs = objects.get(vid)
                    if vobjs is None:
                        raise KeyError(f'{self._join(self.meta_file)}: no entry for video '
                                       f'{vid!r}')
                    for oid in obj_ids:
                        if str(oid) not in vobjs:
                            raise KeyError(f'{where}: unknown obj_id {oid}; '
                                           f'{self._join(self.meta_file)} lists objects '
                                           f'{sorted(vobjs)} for this video')
                    category = vobjs[str(obj_ids[0])].get('category')
                if obj_ids and not self.test_mode and not ann_frames:
                    raise FileNotFoundError(f'{where}: no annotation PNG for any listed frame '
                                            f'in {ann_dir}')
                info = dict(
                    video_id=vid, exp_id=str(exp_id), text=text,
                    exp_type=exp.get('exp_type'),
                    annotator=self.annotator_of(str(exp_id), exp, vdata),
                    obj_ids=obj_ids, category=category, frame_ids=frames,
                    img_dir=img_dir, img_suffix=self.img_suffix, ann_dir=ann_dir,
                    ann_frames=ann_frames if obj_ids else [],
                    sparse=self.sparse_annotations)
                if self.keep_expression(info):
                    data_list.append(info)
        return data_list

    def get_data_info(self, idx: int) -> dict:
        """One (video, expression) sample with ``img_paths`` and ``mask_refs`` per frame."""
        info = super().get_data_info(idx)
        img_dir, suffix = info['img_dir'], info['img_suffix']
        ann_frames = set(info['ann_frames'])
        info['img_paths'] = [osp.join(img_dir, f + suffix) for f in info['frame_ids']]
        info['mask_refs'] = [
            dict(type='palette', path=osp.join(info['ann_dir'], f + '.png'),
                 obj_ids=info['obj_ids'], sparse=info['sparse']) if f in ann_frames else None
            for f in info['frame_ids']
        ]
        for key in _COMPACT_KEYS:
            info.pop(key)
        return info

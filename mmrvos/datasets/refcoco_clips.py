"""RefCOCO / RefCOCO+ / RefCOCOg images as 1-frame clips (or pseudo-clips)."""
import os.path as osp
from collections import defaultdict
from typing import List

from mmdet.registry import DATASETS

from .base_rvos import BaseRVOSDataset, load_json


@DATASETS.register_module()
class RefCOCOClipDataset(BaseRVOSDataset):
    """Referring-expression images as clips: one sample per (image, sentence).

    Reads the COCO-style files written by ``tools/dataset_converters/refexp_to_coco.py``
    (the MDETR / ReferFormer format): each ``images`` entry is one sentence
    (``caption``, ``file_name``, ``height``, ``width``, ``id``, ``original_id``) and its
    ``annotations`` (usually one) are the referred object, united into one target.

    The "video" has one frame, so ``ClipSample(num_frames=T)`` repeats it T times; T=1 gives
    the 1-frame clips of ReferDINO's image pretraining, and T>1 followed by a
    ``TransformBroadcaster(share_random_params=False)`` of e.g. mmdet's ``Rotate`` /
    ``RandomAffine`` gives rotated pseudo-clips (see ``configs/_base_/datasets/refcoco.py``).

    Layout (``data_root`` relative)::

        train2014/COCO_train2014_<id>.jpg
        refcoco/instances_refcoco_{train,val}.json     (refcoco+, refcocog likewise)
    """

    METAINFO = dict(classes=('object', ), dataset_name='refcoco')

    def __init__(self, *args, data_prefix: dict = dict(img='train2014'), **kwargs) -> None:
        super().__init__(*args, data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        coco = load_json(self.ann_file, 'images')
        if not isinstance(coco['images'], list) or not isinstance(
                coco.get('annotations', []), list):
            raise ValueError(f'{self.ann_file}: "images" and "annotations" must be lists')
        anns = defaultdict(list)
        for k, ann in enumerate(coco.get('annotations', [])):
            if not isinstance(ann, dict) or 'image_id' not in ann or 'segmentation' not in ann:
                raise ValueError(f'{self.ann_file}: annotation entry {k} lacks "image_id" or '
                                 '"segmentation"')
            anns[ann['image_id']].append(ann)
        img_root = self.data_prefix.get('img', '')
        data_list, seen = [], set()
        for k, img in enumerate(coco['images']):
            if not isinstance(img, dict):
                raise ValueError(f'{self.ann_file}: image entry {k} is not an object')
            where = f'{self.ann_file}: image entry {img.get("id")!r}'
            for key in ('id', 'file_name', 'height', 'width'):
                if key not in img:
                    raise ValueError(f'{where} lacks {key!r}')
            if img['id'] in seen:  # the same expression id twice: one would be lost in scoring
                raise ValueError(f'{where}: image id {img["id"]!r} is listed twice in "images"')
            seen.add(img['id'])
            text = self.check_text(img.get('caption'), where)
            if text is None:
                continue
            targets = anns.get(img['id'], [])
            if not targets and not self.test_mode:
                raise ValueError(f'{where}: no annotation refers to this image entry')
            path = osp.join(img_root, img['file_name'])
            if self.check_files and not osp.isfile(path):
                raise FileNotFoundError(f'{where}: image not found: {path}')
            data_list.append(
                dict(
                    video_id=str(img.get('original_id', img['id'])),
                    exp_id=str(img['id']),
                    text=text,
                    exp_type=None,
                    annotator=None,
                    frame_ids=[osp.splitext(osp.basename(img['file_name']))[0]],
                    img_paths=[path],
                    mask_refs=[
                        dict(
                            type='coco',
                            height=img['height'],
                            width=img['width'],
                            segmentations=[a['segmentation'] for a in targets],
                            source=where)
                    ] if targets else [None]))
        return data_list

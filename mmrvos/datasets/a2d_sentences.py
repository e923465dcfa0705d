"""A2D-Sentences with the MTTR / ReferFormer single-frame annotation JSON."""
import os.path as osp
from collections import Counter
from typing import Dict, List

from mmdet.registry import DATASETS

from .base_rvos import BaseRVOSDataset, list_dir, load_json


@DATASETS.register_module()
class A2DSentencesDataset(BaseRVOSDataset):
    """A2D-Sentences: one sample per (annotated frame, referred instance, sentence).

    Layout (``data_root`` relative; the JSON files are MTTR's)::

        a2d_sentences_single_frame_{train,test}_annotations.json
            [[text, video_id, frame_idx (1-based), instance_id], ...]
        text_annotations/a2d_annotation_with_instances/<vid>/<frame_idx:05d>.h5
            "instance": ids, "reMask": (N, W, H) or (W, H) masks (transposed)
        Release/clips320H/<vid>.mp4                         (frame_source='mp4')
        Release/JPEGImages/<vid>/<frame_idx:05d>.jpg        (frame_source='jpg', 1-based,
                                                             e.g. extracted with ffmpeg)

    Only the annotated frame carries a mask (``key_frames`` = that frame); clips are sampled
    around it (training: key + local + global frames; evaluation: ``ClipSample(test_mode=True,
    test_window=W)``). ``exp_id`` is ``"<instance_id>"`` (``"<instance_id>_<k>"`` when an
    instance has several sentences), ``frame_id`` is the 5-digit 1-based frame name.

    Args:
        ann_file (str): MTTR JSON.
        frame_source (str): 'jpg' (extracted frames) or 'mp4' (decode the clip).
        data_prefix (dict): ``img`` (frame dir, jpg), ``video`` (mp4 dir), ``ann`` (h5 dir).
    """

    METAINFO = dict(classes=('object', ), dataset_name='a2d_sentences')

    def __init__(self,
                 *args,
                 frame_source: str = 'jpg',
                 data_prefix: dict = dict(
                     img='Release/JPEGImages',
                     video='Release/clips320H',
                     ann='text_annotations/a2d_annotation_with_instances'),
                 **kwargs) -> None:
        if frame_source not in ('jpg', 'mp4'):
            raise ValueError(f"frame_source must be 'jpg' or 'mp4', got {frame_source!r}")
        self.frame_source = frame_source
        super().__init__(*args, data_prefix=data_prefix, **kwargs)

    def _num_frames(self, vid: str, cache: Dict[str, int]) -> int:
        if vid in cache:
            return cache[vid]
        if self.frame_source == 'jpg':
            frame_dir = osp.join(self.data_prefix['img'], vid)
            names = [n for n in list_dir(frame_dir) if n.endswith('.jpg')]
            if not names:
                raise FileNotFoundError(f'no frames found in {frame_dir}')
            expected = {f'{i:05d}.jpg' for i in range(1, len(names) + 1)}
            if set(names) != expected:
                missing = sorted(expected - set(names))
                raise FileNotFoundError(f'missing frame: {osp.join(frame_dir, missing[0])} '
                                        f'(frames must be 00001.jpg ... {len(names):05d}.jpg)')
            num = len(names)
        else:
            import cv2
            path = osp.join(self.data_prefix['video'], vid + '.mp4')
            if not osp.isfile(path):
                raise FileNotFoundError(f'video not found: {path}')
            cap = cv2.VideoCapture(path)
            num = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            cap.release()
            if num <= 0:
                raise OSError(f'cannot read the frame count of {path}')
        cache[vid] = num
        return num

    def load_data_list(self) -> List[dict]:
        rows = load_json(self.ann_file)
        if not isinstance(rows, list):
            raise ValueError(f'{self.ann_file}: expected a JSON list of '
                             '[text, video_id, frame_idx, instance_id]')
        parsed = []
        for i, row in enumerate(rows):
            where = f'{self.ann_file}: entry {i}'
            if not isinstance(row, (list, tuple)) or len(row) < 4:
                raise ValueError(f'{where}: expected [text, video_id, frame_idx, instance_id]')
            try:
                parsed.append((row[0], str(row[1]), int(row[2]), int(row[3])))
            except (TypeError, ValueError):
                raise ValueError(f'{where}: frame_idx and instance_id must be integers, got '
                                 f'{row[2]!r}, {row[3]!r}') from None
        per_instance = Counter((r[1], r[3]) for r in parsed)
        seen: Counter = Counter()
        cache: Dict[str, int] = {}
        data_list = []
        for i, (text, vid, frame_idx, instance_id) in enumerate(parsed):
            where = f'{self.ann_file}: entry {i}'
            text = self.check_text(text, f'{where} (video {vid!r})')
            if text is None:
                continue
            num = self._num_frames(vid, cache) if self.check_files else None
            if num is not None and not 1 <= frame_idx <= num:
                raise ValueError(f'{where}: frame {frame_idx} outside 1..{num} of video {vid!r}')
            key = (vid, instance_id)
            exp_id = str(instance_id)
            if per_instance[key] > 1:
                exp_id = f'{instance_id}_{seen[key]}'
            seen[key] += 1
            data_list.append(
                dict(
                    video_id=vid,
                    exp_id=exp_id,
                    text=text,
                    exp_type=None,
                    annotator=None,
                    frame_idx=frame_idx,
                    instance_id=instance_id,
                    num_frames=num))
        return data_list

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        vid, frame_idx = info['video_id'], info['frame_idx']
        num = info['num_frames'] or self._num_frames(vid, {})
        info['frame_ids'] = [f'{i:05d}' for i in range(1, num + 1)]
        if self.frame_source == 'jpg':
            frame_dir = osp.join(self.data_prefix['img'], vid)
            info['img_paths'] = [osp.join(frame_dir, f + '.jpg') for f in info['frame_ids']]
        else:
            info['video_path'] = osp.join(self.data_prefix['video'], vid + '.mp4')
            info['img_paths'] = [f'{info["video_path"]}#{f}' for f in info['frame_ids']]
        refs = [None] * num
        refs[frame_idx - 1] = dict(
            type='h5',
            path=osp.join(self.data_prefix['ann'], vid, f'{frame_idx:05d}.h5'),
            instance_id=info['instance_id'])
        info['mask_refs'] = refs
        info['key_frames'] = [frame_idx - 1]
        return info

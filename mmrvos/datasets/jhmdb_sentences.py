"""JHMDB-Sentences (evaluation only) with MTTR's samples-metadata JSON."""
import os.path as osp
from typing import List

from mmdet.registry import DATASETS

from .base_rvos import BaseRVOSDataset, load_json


def _relative_to(path: str, anchor: str) -> str:
    """``'./jhmdb_sentences/Rename_Images/a/b/00002.png'`` -> ``'Rename_Images/a/b/00002.png'``."""
    parts = path.replace('\\', '/').split('/')
    if anchor not in parts:
        raise ValueError(f'path {path!r} does not contain {anchor!r}')
    return '/'.join(parts[parts.index(anchor):])


@DATASETS.register_module()
class JHMDBSentencesDataset(BaseRVOSDataset):
    """JHMDB-Sentences: one sample per MTTR metadata entry (3 chosen frames per sentence).

    Layout (``data_root`` relative)::

        jhmdb_sentences_samples_metadata.json
            [[video_id, chosen_frame_path, video_masks_path, video_total_frames, text], ...]
        Rename_Images/<action>/<vid>/<frame:05d>.png        frames, 1-based
        puppet_mask/<action>/<vid>/puppet_mask.mat          "part_mask" (H, W, T)

    The paths in the JSON (``./jhmdb_sentences/Rename_Images/...``) are re-rooted at
    ``data_root`` from their ``Rename_Images`` / ``puppet_mask`` component. Only the chosen
    frame carries the mask (the evaluated frame of the protocol), unless
    ``annotate_all_frames=True`` (every frame with a puppet mask). ``exp_id`` is
    ``"<entry index>"``; the same video appears in several samples.
    """

    METAINFO = dict(classes=('object', ), dataset_name='jhmdb_sentences')

    def __init__(self, *args, annotate_all_frames: bool = False, **kwargs) -> None:
        self.annotate_all_frames = annotate_all_frames
        kwargs.setdefault('data_prefix', dict(img=''))
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        rows = load_json(self.ann_file)
        if not isinstance(rows, list):
            raise ValueError(f'{self.ann_file}: expected a JSON list of MTTR sample entries')
        root = self.data_root or ''
        data_list = []
        for i, row in enumerate(rows):
            where = f'{self.ann_file}: entry {i}'
            if not isinstance(row, (list, tuple)) or len(row) < 5:
                raise ValueError(f'{where}: expected [video_id, chosen_frame_path, '
                                 'video_masks_path, video_total_frames, text]')
            vid, frame_path, mask_path, total, text = row[:5]
            text = self.check_text(text, f'{where} (video {vid!r})')
            if text is None:
                continue
            try:
                frame_path = osp.join(root, _relative_to(str(frame_path), 'Rename_Images'))
                mask_path = osp.join(root, _relative_to(str(mask_path), 'puppet_mask'))
            except ValueError as e:
                raise ValueError(f'{where}: {e}') from None
            frame_dir, frame_name = osp.split(frame_path)
            try:
                chosen = int(osp.splitext(frame_name)[0])
                total = int(total)
            except (TypeError, ValueError):
                raise ValueError(f'{where}: expected a numbered frame (00005.png) and an '
                                 f'integer frame count, got {frame_name!r}, {total!r}') from None
            if not 1 <= chosen <= total:
                raise ValueError(f'{where}: chosen frame {chosen} outside 1..{total}')
            if self.check_files:
                for p in (frame_path, mask_path):
                    if not osp.isfile(p):
                        raise FileNotFoundError(f'{where}: file not found: {p}')
            data_list.append(
                dict(
                    video_id=str(vid),
                    exp_id=str(i),
                    text=text,
                    exp_type=None,
                    annotator=None,
                    frame_dir=frame_dir,
                    mask_path=mask_path,
                    chosen=chosen,
                    num_frames=total))
        return data_list

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        frame_dir, num = info.pop('frame_dir'), info['num_frames']
        info['frame_ids'] = [f'{i:05d}' for i in range(1, num + 1)]
        info['img_paths'] = [osp.join(frame_dir, f + '.png') for f in info['frame_ids']]
        ref = lambda t: dict(type='mat', path=info['mask_path'], index=t)  # noqa: E731
        if self.annotate_all_frames:
            info['mask_refs'] = [ref(t) for t in range(num)]
        else:
            info['mask_refs'] = [ref(t) if t == info['chosen'] - 1 else None for t in range(num)]
        info['key_frames'] = [info['chosen'] - 1]
        return info

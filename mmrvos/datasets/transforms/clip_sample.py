"""Frame sampling of a (video, expression) sample into a clip."""
from typing import List, Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

# per-frame keys of a dataset's data_info: video-level list -> per-frame entry of the clip
PER_FRAME_KEYS = {'img_paths': 'img_path', 'frame_ids': 'frame_id', 'mask_refs': 'mask_ref'}


@TRANSFORMS.register_module()
class ClipSample(BaseTransform):
    """Choose the T frames of a clip and scatter the sample into per-frame lists.

    Training (ReferDINO / ReferFormer scheme): a key frame (uniform, or uniform over
    ``data_info['key_frames']`` when the dataset restricts it, e.g. A2D's annotated frame), two
    local frames at a random offset in ``[1, local_range]`` before and after it (clamped to the
    video), and ``num_frames - 3`` global frames drawn from the rest of the video (with
    repetition when the video is too short). Indices are sorted, then reversed with probability
    ``reverse_prob``.

    Test mode (``test_mode=True``): the whole video in order, or with ``test_window=W`` the W
    frames centred on the key frame (edge frames repeated), as used for A2D/JHMDB evaluation.

    Every key of the output is a list of length T, as mmcv's ``TransformBroadcaster`` expects:
    ``img_path``, ``frame_id`` (frame name), ``frame_index`` (int index in the video),
    ``mask_ref``, and the video-level keys (``text``, ``video_id``, ``exp_id``, ...) repeated;
    ``ori_video_length`` = T and ``video_length`` = number of frames in the video.

    Args:
        num_frames (int): T in training. Defaults to 6.
        local_range (int): maximal offset of the local frames. Defaults to 3.
        reverse_prob (float): probability of reversing the clip order. Defaults to 0.3.
        test_mode (bool): sample the whole video (or a window) deterministically.
        test_window (int, optional): window length around the key frame in test mode.
    """

    def __init__(self,
                 num_frames: int = 6,
                 local_range: int = 3,
                 reverse_prob: float = 0.3,
                 test_mode: bool = False,
                 test_window: Optional[int] = None) -> None:
        assert num_frames >= 1 and local_range >= 1 and 0 <= reverse_prob <= 1
        self.num_frames = num_frames
        self.local_range = local_range
        self.reverse_prob = reverse_prob
        self.test_mode = test_mode
        self.test_window = test_window

    def _key_frame(self, results: dict, num: int) -> int:
        candidates = results.get('key_frames')
        if candidates:
            return int(candidates[np.random.randint(len(candidates))])
        return int(np.random.randint(num))

    def sample_train(self, key: int, num: int) -> List[int]:
        """Key + local + global frame indices (sorted, possibly reversed), length T."""
        t = self.num_frames
        inds = [key]
        if t > 1:
            before = np.random.randint(1, self.local_range + 1)
            inds.append(max(0, key - before))
        if t > 2:
            after = np.random.randint(1, self.local_range + 1)
            inds.append(min(num - 1, key + after))
        global_n = t - len(inds)
        if global_n > 0:
            rest = list(range(0, min(inds))) + list(range(max(inds) + 1, num))
            if len(rest) >= global_n:
                inds += [rest[i] for i in np.random.choice(len(rest), global_n, replace=False)]
            elif num >= global_n:
                inds += np.random.choice(num, global_n, replace=False).tolist()
            else:
                inds += list(range(num)) + np.random.choice(num, global_n - num).tolist()
        inds = sorted(int(i) for i in inds)
        if np.random.rand() < self.reverse_prob:
            inds = inds[::-1]
        return inds

    def sample_test(self, results: dict, num: int) -> List[int]:
        if self.test_window is None:
            return list(range(num))
        key = int((results.get('key_frames') or [num // 2])[0])
        w = self.test_window
        return [min(max(i, 0), num - 1) for i in range(key - w // 2, key + (w + 1) // 2)]

    def transform(self, results: dict) -> dict:
        frame_ids: Sequence[str] = results['frame_ids']
        num = len(frame_ids)
        if num == 0:
            raise ValueError(f'video {results.get("video_id")!r} has no frames')
        if self.test_mode:
            inds = self.sample_test(results, num)
        else:
            inds = self.sample_train(self._key_frame(results, num), num)
        t = len(inds)
        per_frame = {}
        for src, dst in PER_FRAME_KEYS.items():
            values = results.get(src)
            if values is None:
                values = [None] * num
            elif len(values) != num:
                raise ValueError(f'{src} has {len(values)} entries for {num} frames '
                                 f'(video {results.get("video_id")!r})')
            per_frame[dst] = [values[i] for i in inds]
        per_frame['frame_index'] = list(inds)
        out = {}
        for key, value in results.items():
            if key in PER_FRAME_KEYS or key == 'key_frames':
                continue
            out[key] = [value] * t
        out.update(per_frame)
        out['ori_video_length'] = [t] * t
        out['video_length'] = [num] * t
        return out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_frames={self.num_frames}, '
                f'local_range={self.local_range}, reverse_prob={self.reverse_prob}, '
                f'test_mode={self.test_mode}, test_window={self.test_window})')

"""Video-consistent augmentation pieces that mmdet lacks for RVOS.

Use them inside mmcv's ``TransformBroadcaster(share_random_params=True)`` together with mmdet's
``Resize`` / ``RandomChoiceResize`` / ``PhotoMetricDistortion``: the random parameters
(flip direction, crop size and offset, ...) are drawn once per clip and shared by all frames.
"""
import re

import numpy as np
from mmcv.transforms import RandomChoice
from mmcv.transforms.utils import cache_randomness
from mmdet.datasets.transforms import PhotoMetricDistortion, RandomCrop, RandomFlip
from mmdet.registry import TRANSFORMS

_LEFT_RIGHT = re.compile(r'\b(left|right)(?=\b|most\b|ward)', re.IGNORECASE)


def swap_left_right(text: str) -> str:
    """Swap the words "left" and "right" (case kept; also "leftmost", "rightward", ...).

    Word boundaries protect words like "bright" or "copyright". Example:
    ``"the man on the left of the bright car"`` -> ``"the man on the right of the bright car"``.
    """

    def _swap(m):
        word = m.group(1)
        new = 'right' if word.lower() == 'left' else 'left'
        if word.isupper():
            return new.upper()
        if word[0].isupper():
            return new.capitalize()
        return new

    return _LEFT_RIGHT.sub(_swap, text)


@TRANSFORMS.register_module()
class RVOSRandomFlip(RandomFlip):
    """mmdet ``RandomFlip`` that also swaps "left"/"right" in ``results['text']`` on a
    horizontal flip, so the expression still describes the flipped frames."""

    def _flip(self, results: dict) -> None:
        super()._flip(results)
        if results.get('flip_direction') == 'horizontal' and results.get('text') is not None:
            results['text'] = swap_left_right(results['text'])


@TRANSFORMS.register_module()
class RVOSRandomCrop(RandomCrop):
    """mmdet ``RandomCrop`` that crops the image and ``gt_masks`` but never drops the target.

    mmdet's crop filters instances whose box leaves the crop (and only crops masks together with
    boxes); an RVOS clip must keep exactly one target per frame, whose visibility is recomputed
    from the cropped mask when packing. Crop size and offset are drawn by mmdet's cached
    ``_get_crop_size`` / ``_rand_offset``, so they are shared over a clip under
    ``TransformBroadcaster(share_random_params=True)``.
    """

    def _crop_data(self, results: dict, crop_size, allow_negative_crop: bool) -> dict:
        img = results['img']
        margin_h = max(img.shape[0] - crop_size[0], 0)
        margin_w = max(img.shape[1] - crop_size[1], 0)
        offset_h, offset_w = self._rand_offset((margin_h, margin_w))
        y1, y2 = offset_h, offset_h + crop_size[0]
        x1, x2 = offset_w, offset_w + crop_size[1]
        homography = np.array([[1, 0, -offset_w], [0, 1, -offset_h], [0, 0, 1]], dtype=np.float32)
        if results.get('homography_matrix') is None:
            results['homography_matrix'] = homography
        else:
            results['homography_matrix'] = homography @ results['homography_matrix']
        img = img[y1:y2, x1:x2, ...]
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        if results.get('gt_masks') is not None:
            results['gt_masks'] = results['gt_masks'].crop(np.asarray([x1, y1, x2, y2]))
        if results.get('gt_bboxes') is not None:
            results['gt_bboxes'].translate_([-offset_w, -offset_h])
            results['gt_bboxes'].clip_(img.shape[:2])
        return results


@TRANSFORMS.register_module()
class RVOSRandomChoice(RandomChoice):
    """mmcv ``RandomChoice`` usable under ``TransformBroadcaster(share_random_params=True)``.

    mmdet's ``RandAugment(RandomChoice)`` re-decorates ``random_pipeline_index`` with
    ``cache_randomness``, whose ``__set_name__`` appends the name to the list *inherited* from
    ``RandomChoice``; once mmdet is imported, ``RandomChoice._methods_with_randomness`` names
    the method twice, so the broadcaster counts two calls per frame and raises. This subclass
    owns a correct list; the behaviour is otherwise mmcv's.
    """
    _methods_with_randomness = ['random_pipeline_index']


@TRANSFORMS.register_module()
class RVOSPhotoMetricDistortion(PhotoMetricDistortion):
    """mmdet ``PhotoMetricDistortion`` whose random channel swap can be turned off.

    mmdet's version permutes the colour channels half of the time, which turns "the red car"
    into a blue one; RVOS sentences name colours, so the swap happens here with probability
    ``channel_swap_prob`` (default 0). Other steps and arguments are mmdet's; use
    ``hue_delta=0`` to keep hues too (as the official ReferDINO code does).

    Args:
        channel_swap_prob (float): probability of permuting the channels. Defaults to 0.
        **kwargs: ``PhotoMetricDistortion`` arguments.
    """
    # own list: ``cache_randomness`` below would otherwise append to the parent's list
    _methods_with_randomness: list = []

    def __init__(self, channel_swap_prob: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        assert 0 <= channel_swap_prob <= 1
        self.channel_swap_prob = channel_swap_prob

    @cache_randomness
    def _random_flags(self):
        flags = list(PhotoMetricDistortion.__dict__['_random_flags'].func(self))
        flags[5] = int(np.random.rand() < self.channel_swap_prob)  # swap_flag
        return tuple(flags)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', channel_swap_prob={self.channel_swap_prob})'

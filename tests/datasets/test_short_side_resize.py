"""ShortSideResize against the official evaluation's resize (torchvision ``T.Resize(360)`` on
a PIL image = PIL bilinear to (int(360 * long / short), 360))."""
import glob
import os.path as osp

import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from mmdet.registry import TRANSFORMS
from PIL import Image

from mmrvos.datasets.transforms import short_side_size
from rvos_test_utils import JUDO


@pytest.mark.parametrize(
    'size, short, max_size, expected',
    [
        ((854, 480), 360, None, (640, 360)),  # DAVIS: 640.5 truncated (mmdet rounds to 641)
        ((1280, 720), 360, None, (640, 360)),
        ((1920, 800), 360, None, (864, 360)),  # wide: no long-side cap at 640
        ((480, 854), 360, None, (360, 640)),  # portrait
        ((640, 360), 360, None, (640, 360)),  # already the size: unchanged
        ((1920, 800), 360, 640, (640, 267)),  # official A2D rule: short = round(640*800/1920)
        ((320, 240), 360, 640, (480, 360)),
    ])
def test_short_side_size_follows_the_official_rule(size, short, max_size, expected):
    assert short_side_size(*size, short, max_size) == expected


def test_short_side_size_rejects_an_empty_image():
    with pytest.raises(ValueError, match='positive'):
        short_side_size(0, 10, 360)


def test_resize_matches_pil_bilinear_on_a_real_frame():
    frame = sorted(glob.glob(osp.join(JUDO, 'JPEGImages', 'judo', '*.jpg')))[0]
    pil = Image.open(frame).convert('RGB')
    w, h = short_side_size(*pil.size, 360)
    expected = np.asarray(pil.resize((w, h), Image.BILINEAR))
    results = LoadImageFromFile()(dict(img_path=frame))  # BGR, as LoadRVOSFrame
    results = TRANSFORMS.build(dict(type='ShortSideResize', scale=360))(results)
    assert results['img_shape'] == (360, 640) == (h, w)
    assert results['scale_factor'] == pytest.approx((640 / 854, 360 / 480))
    np.testing.assert_array_equal(results['img'][..., ::-1], expected)


def test_resize_rejects_bad_arguments():
    with pytest.raises(ValueError, match='scale'):
        TRANSFORMS.build(dict(type='ShortSideResize', scale=0))
    with pytest.raises(ValueError, match='max_size'):
        TRANSFORMS.build(dict(type='ShortSideResize', scale=360, max_size=300))

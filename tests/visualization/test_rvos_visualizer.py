"""RVOSLocalVisualizer draws what it is given: mask pixels against an independent alpha blend,
boxes in the expression's colour, captions top-left only, mmdet's sample contract."""
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from mmrvos.visualization import GT_COLOR, PALETTE, RVOSLocalVisualizer


@pytest.fixture
def vis(request):
    return RVOSLocalVisualizer(name=f'test_{request.node.name}')


def _image(h=40, w=60, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (h, w, 3), dtype=np.uint8)


def _blend(image, mask, color, alpha):
    """Independent reference: inside the mask (1 - alpha) * pixel + alpha * colour."""
    out = image.astype(np.float64)
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(color, np.float64)
    return out


@pytest.mark.parametrize('alpha', [0.5, 0.3])
def test_masks_are_alpha_blended_in_their_colours(vis, alpha):
    image = _image()
    a = np.zeros((40, 60), bool)
    a[5:25, 10:30] = True
    b = np.zeros((40, 60), bool)
    b[15:35, 20:50] = True  # overlaps a: blended over a's blend
    vis.alpha = alpha
    out = vis.draw_frame(image, [a, torch.from_numpy(b)])
    assert out.shape == image.shape and out.dtype == np.uint8
    ref = _blend(_blend(image, a, PALETTE[0], alpha).round(), b, PALETTE[1], alpha)
    assert np.abs(out - ref).max() <= 1  # uint8 rounding of each blend
    assert (out[~(a | b)] == image[~(a | b)]).all()  # outside: untouched


def test_masks_of_several_instances_are_drawn_as_their_union(vis):
    image = _image()
    masks = np.zeros((2, 40, 60), bool)
    masks[0, :10, :10] = True
    masks[1, 30:, 50:] = True
    out = vis.draw_frame(image, [masks], colors=[(0, 255, 0)])
    union = masks.any(0)
    assert np.abs(out - _blend(image, union, (0, 255, 0), 0.5)).max() <= 1


def test_boxes_and_captions(vis):
    image = np.full((60, 80, 3), 40, np.uint8)
    out = vis.draw_frame(image, [None], [np.array([20., 30., 60., 50.])], colors=[(255, 0, 0)])
    edge = out[30:51, 20]  # left edge of the box: red
    assert (edge[:, 0] > 150).all() and (edge[:, 1] < 100).all()
    inside = out[35:45, 30:50]
    assert (inside == 40).all()  # a box is an outline
    captioned = vis.draw_frame(image, captions=['a cat'])
    changed = (captioned != image).any(2)
    assert changed.any()
    ys, xs = np.nonzero(changed)
    assert ys.max() < 30 and xs.min() < 10  # top-left only


def test_mask_of_another_size_is_an_error(vis):
    with pytest.raises(ValueError, match='mask 0 is 30x20'):
        vis.draw_frame(_image(), [np.zeros((20, 30), bool)])


def _frame_sample(h=80, w=120):
    """A frame's sample: ground truth and prediction below the captions (top ~35 rows)."""
    sample = DetDataSample(
        metainfo=dict(text='the dog', frame_id='00003', frame_index=3, ori_shape=(h, w)))
    gt = np.zeros((1, h, w), np.uint8)
    gt[0, 50:70, 10:30] = 1
    sample.gt_instances = InstanceData(
        masks=BitmapMasks(gt, h, w),
        bboxes=torch.tensor([[10., 50., 30., 70.]]),
        valid=torch.tensor([True]),
        annotated=torch.tensor([True]))
    pred = torch.zeros((1, h, w), dtype=torch.bool)
    pred[0, 50:70, 60:100] = True
    sample.pred_instances = InstanceData(
        masks=pred, bboxes=torch.tensor([[60., 50., 100., 70.]]), scores=torch.tensor([0.9]))
    return sample, gt[0].astype(bool), pred[0].numpy()


def test_datasample_gt_and_prediction_side_by_side(vis, tmp_path):
    image = _image(80, 120)
    sample, gt, pred = _frame_sample()
    drawn = vis.draw_datasample(image, sample)
    assert drawn.shape == (80, 240, 3)
    left, right = drawn[:, :120], drawn[:, 120:]
    # mask interiors (away from box outlines and captions) are blended in their colours
    inner_gt, inner_pred = np.s_[53:67, 13:27], np.s_[53:67, 63:97]
    np.testing.assert_allclose(left[inner_gt], _blend(image, gt, GT_COLOR, 0.5)[inner_gt], atol=1)
    np.testing.assert_allclose(
        right[inner_pred], _blend(image, pred, PALETTE[0], 0.5)[inner_pred], atol=1)
    assert (right[73:] == image[73:]).all()  # below the prediction: untouched
    only_pred = vis.draw_datasample(image, sample, draw_gt=False)
    assert only_pred.shape == (80, 120, 3)
    np.testing.assert_array_equal(only_pred, right)
    hidden = vis.draw_datasample(image, sample, draw_gt=False, pred_score_thr=0.95)
    assert (hidden[inner_pred] == image[inner_pred]).all()  # below the threshold
    out_file = tmp_path / 'frame.png'
    vis.add_datasample('frame', image, sample, out_file=str(out_file))
    import mmcv
    np.testing.assert_array_equal(mmcv.imread(str(out_file), channel_order='rgb'), drawn)


def test_clip_frames_side_by_side_under_a_banner(vis):
    frames, samples = [], []
    for i in range(3):
        sample, _, _ = _frame_sample()
        samples.append(sample)
        frames.append(_image(80, 120, seed=i))
    clip = TrackDataSample(metainfo=dict(video_id='v', exp_id='0', text='the dog'))
    clip.video_data_samples = samples
    drawn = vis.draw_datasample(frames, clip, draw_pred=False)
    assert drawn.shape[1] == 3 * 120 and drawn.shape[0] > 80
    bottom = drawn[-80:]  # the frames under the banner
    for i in range(3):
        tile = bottom[:, 120 * i:120 * (i + 1)]
        assert (tile[73:] == frames[i][73:]).all()  # below the target: the frame itself
        assert (tile[53:67, 13:27] != frames[i][53:67, 13:27]).any(2).all()  # the target
    with pytest.raises(ValueError, match='2 images for a clip of 3 frames'):
        vis.draw_datasample(frames[:2], clip)


def test_registered_for_configs():
    from mmdet.registry import VISUALIZERS
    assert VISUALIZERS.get('RVOSLocalVisualizer') is RVOSLocalVisualizer
    with pytest.raises(ValueError, match='alpha'):
        RVOSLocalVisualizer(name='bad_alpha', alpha=1.5)

"""RVOSVisualizationHook on video clips: files per expression and frame, frames decoded from a
video file (no ``img_path``) taken from the pipeline input at the original size, videos."""
import os
import os.path as osp
from types import SimpleNamespace

import mmcv
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.structures import InstanceData
from PIL import Image

from mmrvos.engine.hooks import RVOSVisualizationHook
from mmrvos.visualization import PALETTE


def _clip(num_frames=4, h=40, w=60, img_paths=None):
    """A predicted clip (ori size h x w) and its pipeline input (half size, BGR, padded)."""
    frames = []
    for t in range(num_frames):
        meta = dict(
            ori_shape=(h, w),
            img_shape=(h // 2, w // 2),
            frame_id=f'{t:05d}',
            frame_index=t,
            text='the box',
            img_path=img_paths[t] if img_paths else None)
        sample = DetDataSample(metainfo=meta)
        mask = torch.zeros((1, h, w), dtype=torch.bool)
        mask[0, 20:36, 8 + 4 * t:28 + 4 * t] = True
        sample.pred_instances = InstanceData(
            masks=mask,
            scores=torch.tensor([0.8]),
            bboxes=torch.tensor([[8. + 4 * t, 20., 28. + 4 * t, 36.]]))
        frames.append(sample)
    clip = TrackDataSample(metainfo=dict(video_id='cars/v1', exp_id='2', text='the box'))
    clip.video_data_samples = frames
    inputs = torch.zeros((num_frames, 3, h // 2 + 4, w // 2 + 2), dtype=torch.uint8)
    inputs[:, 2] = 200  # BGR: red frames (the padding included, cropped by img_shape)
    return clip, dict(inputs=[inputs])


def test_after_test_iter_writes_every_expression_frame_and_a_video(tmp_path):
    hook = RVOSVisualizationHook(
        draw=True, test_out_dir='vis', img_suffix='.png', video_format='gif', frame_interval=2)
    runner = SimpleNamespace(work_dir=str(tmp_path), timestamp='20240101_000000')
    hook.before_test(runner)
    clip, batch = _clip()
    hook.after_test_iter(runner, 0, batch, [clip])
    root = osp.join(tmp_path, '20240101_000000', 'vis', 'cars_v1')
    assert sorted(os.listdir(root)) == ['2', '2.gif']
    assert sorted(os.listdir(osp.join(root, '2'))) == ['00000.png', '00002.png']
    drawn = mmcv.imread(osp.join(root, '2', '00002.png'), channel_order='rgb')
    assert drawn.shape == (40, 60, 3)  # the original size, from the half-size input
    red = np.array([200, 0, 0])
    # inside the mask (away from its outline), red blended with the expression's colour
    np.testing.assert_allclose(drawn[28, 22], 0.5 * red + 0.5 * np.array(PALETTE[0]), atol=2)
    assert tuple(drawn[38, 2]) == (200, 0, 0)  # outside the mask: the frame
    assert Image.open(osp.join(root, '2.gif')).n_frames == 2


def test_frames_are_read_from_img_path(tmp_path):
    paths = []
    for t in range(2):
        path = str(tmp_path / f'{t}.png')
        mmcv.imwrite(np.full((40, 60, 3), (0, 120, 0), np.uint8), path)  # BGR green
        paths.append(path)
    hook = RVOSVisualizationHook(draw=True, test_out_dir=str(tmp_path / 'abs'), img_suffix='.png')
    runner = SimpleNamespace(work_dir=str(tmp_path / 'w'), timestamp='t')
    hook.before_test(runner)
    clip, batch = _clip(2, img_paths=paths)
    hook.after_test_iter(runner, 0, batch, [clip])
    drawn = mmcv.imread(str(tmp_path / 'abs' / 'cars_v1' / '2' / '00001.png'), channel_order='rgb')
    assert tuple(drawn[38, 2]) == (0, 120, 0)


def test_nothing_drawn_unless_asked(tmp_path):
    hook = RVOSVisualizationHook(test_out_dir='vis')
    runner = SimpleNamespace(work_dir=str(tmp_path), timestamp='t')
    hook.before_test(runner)
    clip, batch = _clip()
    hook.after_test_iter(runner, 0, batch, [clip])
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('kwargs,message', [
    (dict(interval=0), 'interval'),
    (dict(frame_interval=1.5), 'frame_interval'),
    (dict(img_suffix='.bmp'), 'img_suffix'),
    (dict(video_format='avi'), 'video_format'),
])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RVOSVisualizationHook(**kwargs)

"""RVOSDataPreprocessor: training batches padded to /32 (official collator), inference inputs
not padded (official evaluation)."""
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, TrackDataSample


def _clip(h, w, t=2):
    clip = TrackDataSample()
    clip.video_data_samples = [
        DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w))) for _ in range(t)
    ]
    return clip


def test_data_preprocessor_pads_training_batches_only():
    pre = MODELS.build(
        dict(
            type='RVOSDataPreprocessor',
            mean=[0, 0, 0],
            std=[1, 1, 1],
            pad_size_divisor=1,
            train_pad_size_divisor=32))
    frames = torch.randint(0, 255, (2, 3, 360, 640), dtype=torch.uint8)
    for training, shape in ((False, (360, 640)), (True, (384, 640)), (False, (360, 640))):
        out = pre(dict(inputs=[frames], data_samples=[_clip(360, 640)]), training)
        assert tuple(out['inputs'].shape[-2:]) == shape
        assert out['data_samples'][0].video_data_samples[0].batch_input_shape == shape
        assert pre.pad_size_divisor == 1  # what mmrvos.apis read for inference
    with pytest.raises(ValueError, match='train_pad_size_divisor'):
        MODELS.build(dict(type='RVOSDataPreprocessor', train_pad_size_divisor=0))

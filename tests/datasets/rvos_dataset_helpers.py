"""Helpers of the dataset tests: pipelines as in configs/_base_/datasets, and small writers."""
import json
import os
import os.path as osp

from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

import mmrvos  # noqa: F401  (registration)

init_default_scope('mmdet')


def frame_loaders():
    return [dict(type='LoadRVOSFrame'), dict(type='LoadRVOSAnnotations')]


def make_test_pipeline(scale=(640, 360), window=None):
    return Compose([
        dict(type='ClipSample', test_mode=True, test_window=window),
        dict(
            type='TransformBroadcaster',
            share_random_params=True,
            transforms=frame_loaders() + [dict(type='Resize', scale=scale, keep_ratio=True)]),
        dict(type='PackRVOSInputs'),
    ])


def make_train_pipeline(num_frames=6,
                        flip_prob=0.5,
                        share=True,
                        crop=True,
                        photometric=True,
                        filter_empty=True,
                        resize=True):
    aug = [dict(type='RVOSRandomFlip', prob=flip_prob)]
    if crop:
        aug.append(dict(type='RVOSRandomCrop', crop_type='absolute_range', crop_size=(96, 120)))
    if resize:
        aug.append(
            dict(
                type='RandomChoiceResize',
                scales=[(320, s) for s in (96, 128, 160)],
                keep_ratio=True,
                resize_type='mmdet.Resize'))
    if photometric:
        aug.append(dict(type='RVOSPhotoMetricDistortion'))
    steps = [
        dict(type='ClipSample', num_frames=num_frames),
        dict(
            type='TransformBroadcaster',
            share_random_params=share,
            transforms=frame_loaders() + aug),
    ]
    if filter_empty:
        steps.append(dict(type='FilterClipWithoutTarget'))
    steps.append(dict(type='PackRVOSInputs'))
    return Compose(steps)


def write_json(path, obj):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f)


def read_json(path):
    with open(path) as f:
        return json.load(f)

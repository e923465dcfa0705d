"""Overfit: the tiny ReferDINO learns one real clip of the DAVIS `judo` fixture.

The clip is made of the fixture's annotated frames (00000, 00005, 00008, 00013) and one
expression; under the fixture's sparse annotation its object is annotated on one of them
only, the others carry no supervision for it. Training from scratch must drive the total
loss down by >= 90% and reach J >= 0.9 (DAVIS region similarity at the original 480x854
resolution) on the annotated frame.
"""
import json
import os.path as osp
import warnings

import numpy as np
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from PIL import Image

from mmrvos.datasets import RefYouTubeVOSDataset
from mmrvos.evaluation.functional import region_jaccard
from rvos_test_utils import TINY_CONFIG

FRAMES = ['00000', '00005', '00008', '00013']
SCALE = (256, 144)


def _dataset(judo_root, tmp_path, exp_id, train):
    meta = json.load(open(osp.join(judo_root, 'meta_expressions.json')))
    video = meta['videos']['judo']
    exp = video['expressions'][exp_id]
    ann = tmp_path / f'meta_{exp_id}.json'
    ann.write_text(
        json.dumps({'videos': {
            'judo': {
                'frames': FRAMES,
                'expressions': {
                    exp_id: exp
                }
            }
        }}))
    frame_tf = [
        dict(type='LoadRVOSFrame'),
        dict(type='Resize', scale=SCALE, keep_ratio=True),
        dict(type='LoadRVOSAnnotations')
    ]
    if train:  # training targets follow the resized frames
        frame_tf = [frame_tf[0], frame_tf[2], frame_tf[1]]
    pipeline = [
        dict(type='ClipSample', test_mode=True),
        dict(type='TransformBroadcaster', share_random_params=True, transforms=frame_tf),
        dict(type='PackRVOSInputs')
    ]
    return RefYouTubeVOSDataset(
        data_root=judo_root,
        ann_file=str(ann),
        pipeline=pipeline,
        data_prefix=dict(img='JPEGImages', ann='Annotations'),
        test_mode=not train)


def test_tiny_model_overfits_one_judo_clip(judo_root, tmp_path):
    torch.manual_seed(0)
    np.random.seed(0)
    cfg = Config.fromfile(TINY_CONFIG)
    model = MODELS.build(cfg.model)
    model.init_weights()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the fixture's 853-px annotation is repaired
        train_data = pseudo_collate([_dataset(judo_root, tmp_path, '0', True)[0]])
        test_data = pseudo_collate([_dataset(judo_root, tmp_path, '0', False)[0]])
    batch = model.data_preprocessor(train_data, True)
    frames = batch['data_samples'][0].video_data_samples
    assert [f.frame_id for f in frames] == FRAMES
    assert [bool(f.gt_instances.annotated[0]) for f in frames] == [True, False, False, False]

    optim = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=1e-4)
    model.train()
    losses = []
    for _ in range(ITERS):
        loss = sum(model.loss(batch['inputs'], batch['data_samples']).values())
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optim.step()
        losses.append(float(loss))
    print(f'loss {losses[0]:.2f} -> {losses[-1]:.2f}')
    assert losses[-1] <= 0.1 * losses[0]

    model.eval()
    with torch.no_grad():
        test = model.data_preprocessor(test_data, False)
        pred = model.predict(test['inputs'], test['data_samples'])[0]
    gt = np.array(Image.open(osp.join(judo_root, 'Annotations', 'judo', '00000.png'))) == 1
    mask = pred.video_data_samples[0].pred_instances.masks[0].numpy()
    assert mask.shape == (480, 854)
    j = float(region_jaccard(gt, mask))
    print(f'J on the annotated frame: {j:.3f}')
    assert j >= 0.9


ITERS = 80

"""ReferFormer project: offline tiny RoBERTa, language queries, loss and predict on toy configs."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData

import mmrvos  # noqa: F401
from rvos_test_utils import REPO_ROOT

PROJECT = osp.join(REPO_ROOT, 'projects', 'ReferFormer')
TINY = osp.join(PROJECT, 'configs', 'referformer_tiny_toy-rvos.py')
TINY_ROBERTA = osp.join(PROJECT, 'tests', 'data', 'tiny_roberta')


def make_clip(t=2, h=64, w=96, text='the red circle on the left'):
    """A clip whose target box moves down by 2 px per frame."""
    clip = TrackDataSample()
    frames = []
    for i in range(t):
        s = DetDataSample(
            metainfo=dict(
                img_shape=(h, w),
                ori_shape=(h, w),
                pad_shape=(h, w),
                batch_input_shape=(h, w),
                frame_index=i))
        mask = np.zeros((1, h, w), np.uint8)
        mask[0, 10 + 2 * i:30 + 2 * i, 20:50] = 1
        s.gt_instances = InstanceData(
            bboxes=torch.tensor([[20., 10. + 2 * i, 50., 30. + 2 * i]]),
            masks=BitmapMasks(mask, h, w),
            labels=torch.zeros(1, dtype=torch.long),
            valid=torch.tensor([True]),
            annotated=torch.tensor([True]))
        frames.append(s)
    clip.video_data_samples = frames
    clip.set_metainfo(dict(text=text))
    return clip


def build(config=TINY, **model_overrides):
    import projects.ReferFormer.referformer  # noqa: F401
    cfg = Config.fromfile(config)
    for k, v in model_overrides.items():
        cfg.model[k] = v
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def tiny():
    return build()


def test_tiny_roberta_is_small_offline_and_tokenizes():
    files = sorted(os.listdir(TINY_ROBERTA))
    assert files == ['config.json', 'merges.txt', 'model.safetensors', 'vocab.json']
    assert sum(osp.getsize(osp.join(TINY_ROBERTA, f)) for f in files) < 300_000
    from transformers import RobertaTokenizerFast
    tok = RobertaTokenizerFast.from_pretrained(TINY_ROBERTA)
    ids = tok('a red circle moving left').input_ids
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == 'a red circle moving left'


def test_text_encoder_is_frozen_and_masks_padding(tiny):
    enc = tiny.text_encoder
    tiny.train()
    assert not enc.model.training and all(not p.requires_grad for p in enc.model.parameters())
    out = enc(['a red circle', 'the small blue square moving up quickly'])
    n, length = out['padding'].shape
    assert n == 2 and out['words'].shape == (2, length, 64) and out['sentence'].shape == (2, 64)
    assert out['padding'][0].any() and not out['padding'][1].any()
    assert out['pos'].shape == (2, length, 64)
    with pytest.raises(ValueError, match='non-empty'):
        enc([' '])


def test_loss_terms_and_gradients(tiny):
    tiny.train()
    tiny.zero_grad()
    losses = tiny.loss(torch.randn(1, 2, 3, 64, 96), [make_clip()])
    for prefix in ('', 'd0.'):  # 2 decoder layers: last unprefixed + one aux
        for term in ('loss_cls', 'loss_bbox', 'loss_iou', 'loss_mask', 'loss_dice'):
            assert torch.isfinite(losses[prefix + term]), prefix + term
    assert not any(k.startswith('d1.') for k in losses)
    sum(losses.values()).backward()
    params = dict(tiny.named_parameters())
    for name in ('query_embedding.weight', 'text_encoder.resizer.0.weight',
                 'vl_fusion.attn.in_proj_weight', 'cm_fpn.blocks.0.cross_attn.in_proj_weight',
                 'bbox_head.mask_decoder.controller.layers.0.weight', 'backbone.conv1.weight'):
        assert params[name].grad is not None and params[name].grad.abs().sum() > 0, name
    assert all(p.grad is None for p in tiny.text_encoder.model.parameters())


@torch.no_grad()
def test_queries_are_shared_across_frames_and_conditioned_on_the_sentence(tiny):
    tiny.eval()
    frame = torch.randn(1, 3, 64, 96)
    clip = make_clip(t=3)
    frames = clip.video_data_samples
    video = frame.expand(3, -1, -1, -1)
    text = tiny.text_encoder(['the red circle on the left'])
    out = tiny.forward_frames(video, frames, text, 3)
    assert out['cls'].shape == (2, 3, 5) and out['boxes'].shape == (2, 3, 5, 4)
    # identical frames + shared queries -> identical instance sequences on every frame
    torch.testing.assert_close(out['cls'][:, 0], out['cls'][:, 2], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out['boxes'][:, 0], out['boxes'][:, 1], rtol=1e-4, atol=1e-5)
    other = tiny.forward_frames(video, frames, tiny.text_encoder(['a green triangle']), 3)
    assert not torch.allclose(out['cls'], other['cls'])


@torch.no_grad()
def test_predict_selects_one_sequence_for_the_whole_clip(tiny):
    tiny.eval()
    video = torch.randn(1, 4, 3, 64, 96)
    clip = tiny.predict(video, [make_clip(t=4)])[0]
    text = tiny.text_encoder(['the red circle on the left'])
    out = tiny.forward_frames(video[0], clip.video_data_samples, text, 4)
    best = out['cls'][-1].sigmoid().mean(0).argmax()
    for t, frame in enumerate(clip.video_data_samples):
        res = frame.pred_instances
        assert res.masks.shape == (1, 64, 96) and res.masks.dtype == torch.bool
        torch.testing.assert_close(res.scores, out['cls'][-1][t, best].sigmoid()[None])


@pytest.mark.parametrize('name', ['referformer_r50_ref-ytvos', 'referformer_r50_a2d-sentences'])
def test_full_size_configs(name):
    cfg = Config.fromfile(osp.join(PROJECT, 'configs', name + '.py'))
    assert cfg.model.num_queries == 5
    assert cfg.model.encoder.num_layers == cfg.model.decoder.num_layers == 4
    assert cfg.train_dataloader.dataset.pipeline[0].num_frames == 5
    assert 'projects.ReferFormer.referformer' in cfg.custom_imports.imports


def test_r50_config_runs_a_loss_with_the_tiny_text_model():
    cfg = Config.fromfile(osp.join(PROJECT, 'configs', 'referformer_r50_ref-ytvos.py'))
    import projects.ReferFormer.referformer  # noqa: F401
    cfg.model.backbone.init_cfg = None
    cfg.model.text_encoder.name = TINY_ROBERTA
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()  # else level_embed is uninitialised memory (NaN now and then)
    model.train()
    losses = model.loss(torch.randn(1, 1, 3, 64, 64), [make_clip(t=1, w=64)])
    assert {'loss_cls', 'd2.loss_dice', 'loss_mask'} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())

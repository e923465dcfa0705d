"""G-DINO+SH / G-DINO+DH mask heads: math, box dependence, and the toy systems end to end."""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData

import mmrvos  # noqa: F401
from mmrvos.models.heads import DynamicMaskHead, StaticMaskHead
from mmrvos.models.heads.dynamic_mask_head import relative_coords
from rvos_test_utils import REPO_ROOT

CONFIGS = {
    'sh': osp.join(REPO_ROOT, 'configs', 'referdino', 'gdino-sh_tiny_1xb2_toy-rvos.py'),
    'dh': osp.join(REPO_ROOT, 'configs', 'referdino', 'gdino-dh_tiny_1xb2_toy-rvos.py'),
}


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


def test_static_head_is_the_dot_product_and_ignores_boxes():
    torch.manual_seed(0)
    head = StaticMaskHead(embed_dims=16, num_mlp_layers=0)
    q, feats = torch.randn(2, 5, 16), torch.randn(2, 16, 6, 7)
    out = head(q, torch.rand(2, 5, 4), feats, None, None)
    torch.testing.assert_close(out[1, 3], (q[1, 3][:, None, None] * feats[1]).sum(0))
    torch.testing.assert_close(head(q, torch.rand(2, 5, 4), feats, None, None), out)
    mlp = StaticMaskHead(embed_dims=16, mask_channels=8, num_mlp_layers=2)
    assert mlp(q, torch.rand(2, 5, 4), torch.randn(2, 8, 6, 7)).shape == (2, 5, 6, 7)


def test_relative_coords_vanish_at_the_box_centre_and_respect_padding():
    # box centre on the centre of pixel (x=3, y=1) of a 4x8 map
    boxes = torch.tensor([[[3.5 / 8, 1.5 / 4, 0.2, 0.2]]])
    rel = relative_coords(boxes, (4, 8))
    assert rel.shape == (1, 1, 2, 4, 8)
    torch.testing.assert_close(rel[0, 0, :, 1, 3], torch.zeros(2))
    assert rel[0, 0, 0, 1, 5] < 0 < rel[0, 0, 0, 1, 0]  # pixels right of the centre: cx - x < 0
    assert rel[0, 0, 1, 3, 3] < 0 < rel[0, 0, 1, 0, 3]
    # only half of the width is valid: x is measured in units of the valid width
    half = relative_coords(
        torch.tensor([[[3.5 / 4, 1.5 / 4, .2, .2]]]), (4, 8), torch.tensor([[0.5, 1.0]]))
    torch.testing.assert_close(half[0, 0, :, 1, 3], torch.zeros(2))


def test_dynamic_head_matches_grouped_conv_reference():
    torch.manual_seed(0)
    head = DynamicMaskHead(
        embed_dims=16, in_channels=12, reduced_channels=8, dynamic_channels=8, num_dynamic_layers=3)
    head.init_weights()
    assert head.num_params == 169  # CondInst: (8+2)*8+8 + 8*8+8 + 8+1
    q, boxes, feats = torch.randn(2, 3, 16), torch.rand(2, 3, 4), torch.randn(2, 12, 5, 6)
    out = head(q, boxes, feats, torch.randn(2, 4, 16), torch.zeros(2, 4, dtype=torch.bool))
    assert out.shape == (2, 3, 5, 6)
    # reference: CondInst's grouped 1x1 convolutions, one group per query
    x = torch.cat(
        [head.reduce(feats)[:, None].expand(2, 3, 8, 5, 6),
         relative_coords(boxes, (5, 6))], 2).reshape(1, -1, 5, 6)
    params = head.controller(q).flatten(0, 1)
    start, n = 0, 6
    for i, (o, c) in enumerate(head.layer_shapes):
        w = params[:, start:start + o * c].reshape(n * o, c, 1, 1)
        start += o * c
        b = params[:, start:start + o].reshape(-1)
        start += o
        x = F.conv2d(x, w, b, groups=n)
        x = F.relu(x) if i < 2 else x
    torch.testing.assert_close(out, x.reshape(2, 3, 5, 6), rtol=1e-4, atol=1e-5)


def test_dynamic_head_masks_follow_boxes_and_queries_are_independent():
    torch.manual_seed(0)
    head = DynamicMaskHead(embed_dims=16, in_channels=12)
    head.init_weights()
    q, feats = torch.randn(1, 4, 16), torch.randn(1, 12, 8, 8)
    boxes = torch.rand(1, 4, 4, requires_grad=True)
    out = head(q, boxes, feats)
    perm = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(head(q[:, perm], boxes[:, perm], feats), out[:, perm])
    out[0, 1].sum().backward()
    assert boxes.grad[0, 1, :2].abs().sum() > 0  # the centre moves the mask
    assert boxes.grad[0, [0, 2, 3]].abs().sum() == 0
    no_coord = DynamicMaskHead(embed_dims=16, in_channels=12, rel_coord=False)
    torch.testing.assert_close(
        no_coord(q, torch.rand(1, 4, 4), feats), no_coord(q, torch.rand(1, 4, 4), feats))


def test_heads_reject_bad_inputs():
    head = DynamicMaskHead(embed_dims=16, in_channels=12)
    with pytest.raises(ValueError, match='12-channel'):
        head(torch.randn(1, 3, 16), torch.rand(1, 3, 4), torch.randn(1, 10, 4, 4))
    with pytest.raises(ValueError, match='batch/query'):
        head(torch.randn(1, 3, 16), torch.rand(1, 2, 4), torch.randn(1, 12, 4, 4))
    with pytest.raises(ValueError, match='expected queries'):
        StaticMaskHead(
            16, num_mlp_layers=0)(torch.randn(3, 16), torch.rand(3, 4), torch.randn(16, 4, 4))


@pytest.mark.parametrize('system', ['sh', 'dh'])
def test_baseline_system_builds_trains_and_predicts(system):
    cfg = Config.fromfile(CONFIGS[system])
    assert cfg.model.temporal_enhancer.tracker is None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    head_type = dict(sh=StaticMaskHead, dh=DynamicMaskHead)[system]
    assert type(model.bbox_head.mask_decoder) is head_type
    assert model.temporal.tracker is None and model.temporal.temporal_decoder is not None
    model.train()
    inputs, clips = torch.randn(1, 2, 3, 64, 96), [make_clip()]
    outputs = model.forward_clips(inputs, clips)
    losses = model.bbox_head.loss_by_feat(outputs, clips, (16, 24))
    for key in ('loss_cls', 'loss_mask', 'loss_dice', 'loss_proj', 'd0.loss_mask', 'enc_loss_dice'):
        assert torch.isfinite(losses[key]), key
    reg = model.bbox_head.reg_branches[model.decoder.num_layers - 1]
    # mask logits alone: only the dynamic head's relative coordinates reach the box branch
    outputs[-2]['masks'].sum().backward(retain_graph=True)
    mask_to_box = sum(p.grad.abs().sum() for p in reg.parameters() if p.grad is not None)
    assert (mask_to_box > 0) == (system == 'dh')
    model.zero_grad()
    sum(losses.values()).backward()
    grads = [p.grad for p in model.bbox_head.mask_decoder.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    assert sum(p.grad.abs().sum() for p in reg.parameters()) > 0
    model.eval()
    out = model.predict(torch.randn(1, 3, 3, 64, 96), [make_clip(t=3)])[0]
    for frame in out.video_data_samples:
        assert frame.pred_instances.masks.shape == (1, 64, 96)
        assert frame.pred_instances.masks.dtype == torch.bool

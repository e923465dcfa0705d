"""BaseRVOSHead (through ReferDINOHead): clip targets, sequence losses, selection and
post-processing, each against a reference worked out by hand; the detector's test_cfg is the
head's."""
import math

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData

import mmrvos  # noqa: F401
from rvos_test_utils import TINY_CONFIG


def build_head(**overrides):
    """The tiny config's head on its own (box-only unless overridden), as the detector builds
    it: with the detector's train_cfg (the sequence assigner)."""
    cfg = Config.fromfile(TINY_CONFIG).model
    head = dict(cfg.bbox_head, train_cfg=cfg.train_cfg, mask_decoder=None)
    head.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(head)


def frame(img_shape,
          box=None,
          mask_rect=None,
          pad=(64, 96),
          frame_index=0,
          annotated=None,
          ori_shape=None):
    """A frame sample whose target is ``box`` (xyxy px, None = absent) with a rectangular
    mask ``mask_rect`` = (y0, y1, x0, x1) on an ``img_shape`` canvas."""
    h, w = img_shape
    sample = DetDataSample(
        metainfo=dict(
            img_shape=img_shape,
            ori_shape=ori_shape or img_shape,
            batch_input_shape=pad,
            frame_index=frame_index))
    mask = np.zeros((1, h, w), np.uint8)
    if mask_rect is not None:
        y0, y1, x0, x1 = mask_rect
        mask[0, y0:y1, x0:x1] = 1
    gt = InstanceData(
        bboxes=torch.tensor([box if box is not None else [0., 0., 0., 0.]]),
        masks=BitmapMasks(mask, h, w),
        labels=torch.zeros(1, dtype=torch.long),
        valid=torch.tensor([box is not None]))
    if annotated is not None:
        gt.annotated = torch.tensor([annotated])
    sample.gt_instances = gt
    return sample


def clip(frames):
    sample = TrackDataSample()
    sample.video_data_samples = frames
    sample.set_metainfo(dict(text='the red circle'))
    return sample


def two_clips():
    """Clip 0: unpadded 64x96, target visible on frame 0, absent (but annotated) on frame 1.
    Clip 1: 56x88 padded to 64x96, frame 0 not annotated, target visible on frame 1; its
    samples carry no ``annotated`` flag (= annotated) except frame 0."""
    a = clip([
        frame((64, 96), [20., 10., 50., 30.], (8, 24, 16, 40), annotated=True),
        frame((64, 96), None, None, frame_index=1, annotated=True)
    ])
    b = clip([
        frame((56, 88), None, None, annotated=False),
        frame((56, 88), [0., 0., 44., 28.], (0, 56, 84, 88), frame_index=1)
    ])
    return [a, b]


def test_get_targets_of_a_padded_two_clip_batch():
    targets = build_head().get_targets(two_clips(), (16, 24))
    # boxes normalised by each frame's own (unpadded) size, cxcywh
    expected_boxes = torch.tensor([[[35 / 96, 20 / 64, 30 / 96, 20 / 64], [0., 0., 0., 0.]],
                                   [[0., 0., 0., 0.], [0.25, 0.25, 0.5, 0.5]]])
    torch.testing.assert_close(targets['boxes'], expected_boxes)
    assert targets['valid'].tolist() == [[True, False], [False, True]]
    assert targets['annotated'].tolist() == [[True, True], [False, True]]
    # stride 4 from pixel 2: pixel 4r + 2 in rows [8, 24) -> r = 2..5, 4c + 2 in cols
    # [16, 40) -> c = 4..9
    want = torch.zeros(2, 2, 16, 24)
    want[0, 0, 2:6, 4:10] = 1
    # clip 1: columns [84, 88) of a 56x88 frame, padded to 64x96: 4c + 2 in [84, 88) -> c = 21;
    # rows 4r + 2 < 56 -> r = 0..13, the padding rows 14, 15 stay 0
    want[1, 1, 0:14, 21] = 1
    assert targets['masks'].shape == (2, 2, 16, 24)
    assert torch.equal(targets['masks'], want)
    assert 'loss_masks' not in targets


def test_get_targets_at_a_finer_loss_stride():
    targets = build_head(mask_loss_stride=2).get_targets(two_clips(), (16, 24))
    # stride 2 from pixel 1: 2r + 1 in [8, 24) -> r = 4..11; 2c + 1 in [16, 40) -> c = 8..19
    want = torch.zeros(32, 48)
    want[4:12, 8:20] = 1
    assert targets['loss_masks'].shape == (2, 2, 32, 48)
    assert torch.equal(targets['loss_masks'][0, 0], want)
    assert not targets['loss_masks'][0, 1].any()


def _outputs(targets, shift=0.0):
    """3 queries per frame: query 2 (clip 0) / query 0 (clip 1) predicts the target exactly
    (box, mask) with a confident logit; the others are small corner boxes, empty masks."""
    n, t = targets['valid'].shape
    cls = torch.full((n, t, 3), -3.0)
    boxes = torch.tensor([0.05, 0.05, 0.02, 0.02]).repeat(n, t, 3, 1)
    masks = torch.full((n, t, 3, 16, 24), -8.0)
    for c, q in ((0, 2), (1, 0)):
        cls[c, :, q] = 2.0
        boxes[c, :, q] = targets['boxes'][c]
        boxes[c, :, q, 0] += shift
        masks[c, :, q] = targets['masks'][c] * 16 - 8
    return dict(cls=cls, boxes=boxes, masks=masks)


def _focal(logit, target, alpha=0.25, gamma=2.0):
    p = 1 / (1 + math.exp(-logit))
    if target:
        return -alpha * (1 - p)**gamma * math.log(p)
    return -(1 - alpha) * p**gamma * math.log(1 - p)


def test_loss_by_feat_against_hand_computed_losses():
    head = build_head()
    clips = two_clips()
    targets = head.get_targets(clips, (16, 24))
    out = _outputs(targets)
    assert head.assign(out, targets, (64, 96)).tolist() == [2, 0]
    losses = head.loss_by_feat([out, out, dict(out, name='enc')], clips, (16, 24))
    assert sorted(losses) == sorted(p + k for p in ('d0.', '', 'enc_')
                                    for k in ('loss_cls', 'loss_bbox', 'loss_iou'))
    # focal class loss (weight 4): positive = query 2 / 0 on the frames where the target is
    # visible; the unannotated frame (clip 1, frame 0) has weight 0; 2 visible frames
    total = 0.0
    for c, q_pos in ((0, 2), (1, 0)):
        for t in range(2):
            if not targets['annotated'][c, t]:
                continue
            for q in range(3):
                positive = q == q_pos and bool(targets['valid'][c, t])
                total += _focal(float(out['cls'][c, t, q]), positive)
    torch.testing.assert_close(losses['loss_cls'], torch.tensor(4.0 * total / 2))
    assert float(losses['loss_bbox']) == 0.0
    assert abs(float(losses['loss_iou'])) < 1e-6
    # the centre 0.05 off on every frame: L1 weight 5 x (2 frames x 0.05) / 2 frames
    shifted = head.loss_by_feat([_outputs(targets, shift=0.05)], clips, (16, 24))
    torch.testing.assert_close(shifted['loss_bbox'], torch.tensor(0.25))


def _reference_mean_scores(logits):
    """Mean over frames of the sigmoid, in plain Python."""
    t, q = len(logits), len(logits[0])
    return [sum(1 / (1 + math.exp(-logits[i][j])) for i in range(t)) / t for j in range(q)]


def test_select_queries_ranks_by_the_frame_averaged_score():
    head = build_head()
    logits = torch.randn(4, 6, generator=torch.Generator().manual_seed(3)) * 2
    means = _reference_mean_scores(logits.tolist())
    order = sorted(range(6), key=lambda j: -means[j])
    head.test_cfg['select'] = 'top1'
    assert head.select_queries(logits).tolist() == [max(range(6), key=lambda j: means[j])]
    head.test_cfg['select'] = 'all'
    assert head.select_queries(logits).tolist() == order
    head.test_cfg.update(select='threshold', score_thr=0.5)
    assert head.select_queries(logits).tolist() == [j for j in order if means[j] > 0.5]
    head.test_cfg['score_thr'] = 1.0  # none passes: the best one
    assert head.select_queries(logits).tolist() == order[:1]


def _block_logits(h, w, rect):
    """(h, w) logits: +8 inside rect = (y0, y1, x0, x1), -8 outside."""
    logits = torch.full((h, w), -8.0)
    y0, y1, x0, x1 = rect
    logits[y0:y1, x0:x1] = 8.0
    return logits


def test_predict_by_feat_rescales_and_merges_the_selection():
    head = build_head()
    # 2 frames, 2 selected sequences; stride-4 logits of an unpadded 24x32 input, original
    # size 4x: a bilinear 4x upsampling (half-pixel centres) of a +-8 band (edges in one
    # direction only) crosses 0 exactly on the band's edges, so the masks are the bands
    # scaled by 4
    rects = [(0, 2, 0, 8), (0, 6, 5, 8)]
    masks = torch.stack([torch.stack([_block_logits(6, 8, r) for r in rects])] * 2)
    boxes = torch.tensor([[0.25, 0.25, 0.1, 0.2], [0.5, 0.5, 0.2, 0.1]]).repeat(2, 1, 1)
    cls = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    frames = [frame((24, 32), pad=(24, 32), ori_shape=(24, 32), frame_index=i) for i in range(2)]
    block = [np.kron(_block_logits(6, 8, r).numpy() > 0, np.ones((4, 4), bool)) for r in rects]
    # xyxy in original pixels (32 wide, 24 high)
    xyxy = [[(0.25 - 0.05) * 32, (0.25 - 0.1) * 24, (0.25 + 0.05) * 32, (0.25 + 0.1) * 24],
            [(0.5 - 0.1) * 32, (0.5 - 0.05) * 24, (0.5 + 0.1) * 32, (0.5 + 0.05) * 24]]
    head.test_cfg['select'] = 'all'  # one instance per sequence
    results = list(head.predict_by_feat(masks, boxes, cls, frames))
    assert len(results) == 2
    for t, res in enumerate(results):
        assert res.masks.shape == (2, 24, 32) and res.masks.dtype == torch.bool
        for k in range(2):
            assert np.array_equal(res.masks[k].numpy(), block[k])
        torch.testing.assert_close(res.bboxes, torch.tensor(xyxy))
        torch.testing.assert_close(res.scores, torch.sigmoid(cls[t]))
        assert res.labels.tolist() == [0, 0]
    head.test_cfg['select'] = 'threshold'  # merged: union of masks and boxes, best score
    for t, res in enumerate(head.predict_by_feat(masks, boxes, cls, frames)):
        assert res.masks.shape == (1, 24, 32)
        assert np.array_equal(res.masks[0].numpy(), block[0] | block[1])
        torch.testing.assert_close(
            res.bboxes,
            torch.tensor([[
                min(xyxy[0][0], xyxy[1][0]),
                min(xyxy[0][1], xyxy[1][1]),
                max(xyxy[0][2], xyxy[1][2]),
                max(xyxy[0][3], xyxy[1][3])
            ]]))
        torch.testing.assert_close(res.scores, torch.sigmoid(cls[t].max())[None])


def test_head_test_cfg_defaults_and_bad_values():
    assert build_head().test_cfg['select'] == 'top1'
    assert build_head().test_cfg['mask_rescale'] == 'bilinear'
    with pytest.raises(ValueError, match="test_cfg.select must be 'top1'"):
        build_head(test_cfg=dict(select='best'))
    with pytest.raises(ValueError, match='test_cfg.mask_rescale'):
        build_head(test_cfg=dict(mask_rescale='nearest'))


def test_the_detector_test_cfg_is_the_heads():
    cfg = Config.fromfile(TINY_CONFIG)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert model.test_cfg is model.bbox_head.test_cfg
    assert model.test_cfg['chunk_size'] == 8 and model.test_cfg['select'] == 'top1'
    model.test_cfg = {**model.test_cfg, 'select': 'all'}  # replacing it reaches the head
    assert model.bbox_head.test_cfg['select'] == 'all'
    logits = torch.tensor([[0.0, 3.0, -1.0]])
    assert model.bbox_head.select_queries(logits).tolist() == [1, 0, 2]

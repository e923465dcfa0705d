"""The mask decoder's box prior (toy-config extension): values, gradients, what it is for."""
import pytest
import torch

import mmrvos  # noqa: F401
from mmrvos.models.heads import GroundingMaskDecoder

LAYER = dict(
    self_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0),
    cross_attn_text_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0),
    cross_attn_cfg=dict(embed_dims=256, num_levels=1, num_points=4, dropout=0.0),
    ffn_cfg=dict(embed_dims=256, feedforward_channels=64, ffn_drop=0.0))


def build_pair(init=0.5):
    """Two decoders with the same weights, without and with the prior."""
    torch.manual_seed(0)
    plain = GroundingMaskDecoder(num_layers=1, layer_cfg=LAYER, with_ref_point_head=True)
    plain.init_weights()
    prior = GroundingMaskDecoder(
        num_layers=1,
        layer_cfg=LAYER,
        with_ref_point_head=True,
        box_prior=True,
        box_prior_init=init)
    missing = prior.load_state_dict(plain.state_dict(), strict=False)
    assert missing.missing_keys == ['box_prior_log_scale'] and not missing.unexpected_keys
    return plain.eval(), prior.eval()


def reference_prior(box, h, w, scale, valid=(1.0, 1.0)):
    """-scale * (u^2 + v^2) pixel by pixel, box in image-normalised cxcywh."""
    cx, cy, bw, bh = box
    vw, vh = valid
    out = torch.empty(h, w, dtype=torch.float64)
    for i in range(h):
        for j in range(w):
            x, y = (j + 0.5) / w, (i + 0.5) / h
            u = (x - cx * vw) / max(bw * vw / 2, 1 / w)
            v = (y - cy * vh) / max(bh * vh / 2, 1 / h)
            out[i, j] = -scale * (u * u + v * v)
    return out


def test_prior_adds_the_hand_computed_logits():
    plain, prior = build_pair(init=0.7)
    torch.manual_seed(1)
    q, text = torch.randn(1, 2, 256), torch.randn(1, 3, 256)
    feats = torch.randn(1, 256, 6, 10)
    # the second box is thinner than one map cell: its half width is clamped to 1 / w
    boxes = torch.tensor([[[0.3, 0.5, 0.4, 0.5], [0.8, 0.2, 0.02, 0.3]]])
    valid = torch.tensor([[0.9, 0.75]])
    with torch.no_grad():
        diff = prior(q, boxes, feats, text, None, valid_ratio=valid) - \
            plain(q, boxes, feats, text, None, valid_ratio=valid)
    for k in range(2):
        ref = reference_prior(boxes[0, k].tolist(), 6, 10, 0.7, valid[0].tolist())
        torch.testing.assert_close(diff[0, k].double(), ref, atol=1e-4, rtol=1e-4)


def test_prior_separates_identical_objects_by_the_box():
    """Two blobs with the same features: the dot product gives them the same logit whatever
    the query; the prior lowers the one away from the query's box by s * (u^2 + v^2)."""
    plain, prior = build_pair()
    h, w = 8, 16
    feats = torch.randn(1, 256, 1, 1).expand(1, 256, h, w).clone()
    blob = torch.randn(256)
    left, right = (slice(3, 5), slice(2, 4)), (slice(3, 5), slice(12, 14))
    for rows, cols in (left, right):
        feats[0, :, rows, cols] = blob[:, None, None]
    box = torch.tensor([[[3 / w, 4 / h, 2 / w, 2 / h]]])  # on the left blob
    q, text = torch.randn(1, 1, 256), torch.randn(1, 3, 256)
    with torch.no_grad():
        plain_m, prior_m = (m(q, box, feats, text, None)[0, 0] for m in (plain, prior))
    torch.testing.assert_close(plain_m[left], plain_m[right])
    # left blob columns 2, 3 (u = -0.5, 0.5), right blob 12, 13 (u = 9.5, 10.5), same rows
    gap = (prior_m[left] - plain_m[left]).mean() - (prior_m[right] - plain_m[right]).mean()
    torch.testing.assert_close(gap, torch.tensor(0.5 * (100.25 - 0.25)), atol=1e-3, rtol=1e-4)
    assert prior_m[left].mean() > prior_m[right].mean() + 40


def test_prior_gradient_moves_the_box_towards_the_target():
    """The prior's gradient on the box centre points to where positive pixels are."""
    _, prior = build_pair()
    box = torch.tensor([[[0.3, 0.5, 0.2, 0.2]]], requires_grad=True)
    logits = prior.box_prior(box, 8, 16)
    target = torch.zeros(1, 1, 8, 16)
    target[..., 3:5, 10:13] = 1  # right of the box
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    loss.backward()
    assert box.grad[0, 0, 0] < 0  # descending increases cx: towards the target
    assert prior.box_prior_log_scale.grad is not None


def test_prior_scale_must_be_positive():
    with pytest.raises(ValueError, match='box_prior_init'):
        GroundingMaskDecoder(num_layers=1, layer_cfg=LAYER, box_prior=True, box_prior_init=0.0)

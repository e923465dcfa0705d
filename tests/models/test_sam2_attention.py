"""The lean SAM 2 Hiera attention (transformers' ``Sam2MultiScaleAttention`` without the
attention map it computes and discards): the same outputs and gradients as transformers' own
module, bit for bit, on a Hiera with query pooling; mmrvos' SAM 2 models use it."""
import importlib

import torch
from transformers import Sam2VideoConfig, Sam2VideoModel

from mmrvos.models.utils.sam2_attention import lean_attention_class, use_lean_sam2_attention
from rvos_test_utils import TINY_SAM2


def test_same_outputs_and_gradients_as_transformers():
    lean = lean_attention_class()
    torch.manual_seed(0)
    model = Sam2VideoModel(Sam2VideoConfig(**TINY_SAM2))
    attns = [m for m in model.modules() if type(m) is lean.base]
    assert any(m.query_stride for m in attns), 'no query pooling: a branch untested'
    x = torch.randn(2, 3, 64, 64)

    def run():
        model.zero_grad()
        out = model.vision_encoder(x)
        loss = sum((f.float()**2).mean() for f in out.fpn_hidden_states)
        loss.backward()
        grads = [p.grad.clone() for p in model.vision_encoder.parameters() if p.grad is not None]
        return [f.detach() for f in out.fpn_hidden_states], grads

    stock_out, stock_grads = run()
    assert use_lean_sam2_attention(model) == len(attns)
    assert all(type(m) is lean for m in attns)
    lean_out, lean_grads = run()
    assert all(torch.equal(a, b) for a, b in zip(stock_out, lean_out))
    assert len(stock_grads) == len(lean_grads) > 0
    assert all(torch.equal(a, b) for a, b in zip(stock_grads, lean_grads))
    assert use_lean_sam2_attention(model) == 0  # idempotent


def test_mmrvos_sam2_models_use_it():
    from mmrvos.models.refiners import build_sam2_video_model
    lean = lean_attention_class()
    refiner_sam2 = build_sam2_video_model(TINY_SAM2)
    assert any(type(m) is lean for m in refiner_sam2.modules())
    assert not any(type(m) is lean.base for m in refiner_sam2.modules())
    tracker = importlib.import_module('projects.MPG-SAM2.mpg_sam2.sam2_tracker')
    mpg = tracker.MPGSam2Tracker(TINY_SAM2, dict(num_heads=2, ffn_dims=64))
    assert any(type(m) is lean for m in mpg.modules())
    assert not any(type(m) is lean.base for m in mpg.modules())
    built_by_the_user = Sam2VideoModel(Sam2VideoConfig(**TINY_SAM2))
    assert build_sam2_video_model(built_by_the_user) is built_by_the_user
    assert not any(type(m) is lean for m in built_by_the_user.modules())

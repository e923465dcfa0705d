"""mmcv's MultiScaleDeformableAttention on CPU.

mmcv 2.1 compiles no CPU kernel for this op: on CPU the module runs mmcv's pure-PyTorch
``multi_scale_deformable_attn_pytorch``. These tests check (1) that function against an
independent naive bilinear-sampling reference, (2) the module's CPU forward and backward
against an explicit composition of its projections with that function, and (3) on a CUDA
machine, the compiled CUDA op against the PyTorch function.
"""
import math

import pytest
import torch
from mmcv.ops import MultiScaleDeformableAttention
from mmcv.ops.multi_scale_deform_attn import (MultiScaleDeformableAttnFunction,
                                              multi_scale_deformable_attn_pytorch)


def _inputs(seed=0, dtype=torch.float64, device='cpu'):
    g = torch.Generator().manual_seed(seed)
    bs, heads, dims, queries, levels, points = 2, 2, 4, 3, 2, 2
    shapes = torch.tensor([[5, 4], [3, 2]], dtype=torch.long)
    num_value = int(shapes.prod(1).sum())
    value = torch.rand(bs, num_value, heads, dims, generator=g, dtype=dtype)
    # include locations outside [0, 1] to exercise zero padding
    loc = torch.rand(bs, queries, heads, levels, points, 2, generator=g, dtype=dtype) * 1.2 - 0.1
    attn = torch.rand(bs, queries, heads, levels, points, generator=g, dtype=dtype)
    attn = attn / attn.sum((-1, -2), keepdim=True)
    return [t.to(device) for t in (value, loc, attn)] + [shapes.to(device)]


def _naive(value, shapes, loc, attn):
    """Bilinear sampling with zero padding, pixel centre convention (align_corners=False)."""
    bs, _, heads, dims = value.shape
    _, queries, _, levels, points, _ = loc.shape
    out = torch.zeros(bs, queries, heads, dims, dtype=value.dtype)
    start = 0
    for lvl in range(levels):
        h, w = (int(v) for v in shapes[lvl])
        fmap = value[:, start:start + h * w].reshape(bs, h, w, heads, dims)
        start += h * w
        for b in range(bs):
            for q in range(queries):
                for m in range(heads):
                    for p in range(points):
                        x = float(loc[b, q, m, lvl, p, 0]) * w - 0.5
                        y = float(loc[b, q, m, lvl, p, 1]) * h - 0.5
                        x0, y0 = math.floor(x), math.floor(y)
                        acc = torch.zeros(dims, dtype=value.dtype)
                        for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
                            for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                                if 0 <= yy < h and 0 <= xx < w:
                                    acc += wy * wx * fmap[b, yy, xx, m]
                        out[b, q, m] += attn[b, q, m, lvl, p] * acc
    return out.reshape(bs, queries, heads * dims)


def test_pytorch_function_matches_naive_bilinear_reference():
    value, loc, attn, shapes = _inputs()
    got = multi_scale_deformable_attn_pytorch(value, shapes, loc, attn)
    torch.testing.assert_close(got, _naive(value, shapes, loc, attn), rtol=1e-10, atol=1e-10)


def test_module_cpu_forward_backward_equal_explicit_composition():
    torch.manual_seed(0)
    msda = MultiScaleDeformableAttention(
        embed_dims=16, num_heads=2, num_levels=2, num_points=2, dropout=0.0, batch_first=True)
    msda.init_weights()
    msda.double()
    shapes = torch.tensor([[6, 5], [3, 3]])
    start = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    n_val = int(shapes.prod(1).sum())
    query = torch.randn(2, 4, 16, dtype=torch.float64, requires_grad=True)
    value = torch.randn(2, n_val, 16, dtype=torch.float64, requires_grad=True)
    ref_pts = torch.rand(2, 4, 2, 2, dtype=torch.float64)

    out = msda(
        query,
        value=value,
        reference_points=ref_pts,
        spatial_shapes=shapes,
        level_start_index=start)
    out.sum().backward()
    got_grads = (query.grad.clone(), value.grad.clone(), msda.sampling_offsets.weight.grad.clone())
    for t in (query, value):
        t.grad = None
    msda.zero_grad()

    # the same computation spelled out with the pure-PyTorch sampling function
    v = msda.value_proj(value).view(2, n_val, 2, 8)
    offsets = msda.sampling_offsets(query).view(2, 4, 2, 2, 2, 2)
    weights = msda.attention_weights(query).view(2, 4, 2, 4).softmax(-1).view(2, 4, 2, 2, 2)
    normaliser = torch.stack([shapes[..., 1], shapes[..., 0]], -1)
    loc = ref_pts[:, :, None, :, None, :] + offsets / normaliser[None, None, None, :, None, :]
    expected = query + msda.output_proj(
        multi_scale_deformable_attn_pytorch(v, shapes, loc, weights))
    expected.sum().backward()
    torch.testing.assert_close(out, expected)
    for got, want in zip(got_grads, (query.grad, value.grad, msda.sampling_offsets.weight.grad)):
        torch.testing.assert_close(got, want)
    assert got_grads[2].abs().sum() > 0  # gradients reach the sampling offsets


@pytest.mark.skipif(not torch.cuda.is_available(), reason='the compiled MSDA op is CUDA-only')
def test_cuda_op_matches_pytorch_function():
    value, loc, attn, shapes = _inputs(dtype=torch.float64, device='cuda')
    start = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    ref = multi_scale_deformable_attn_pytorch(value, shapes, loc, attn)
    got = MultiScaleDeformableAttnFunction.apply(value, shapes, start, loc, attn, 64)
    torch.testing.assert_close(got, ref, rtol=1e-7, atol=1e-7)


# ---------------------------------------------------------------- mmrvos's CPU path
def test_level_by_level_cpu_function_matches_naive_bilinear_reference():
    from mmrvos.models.layers import multi_scale_deformable_attn_cpu
    value, loc, attn, shapes = _inputs(seed=3)
    got = multi_scale_deformable_attn_cpu(value, shapes, loc, attn)
    torch.testing.assert_close(got, _naive(value, shapes, loc, attn), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('ref_dim,batch_first,padding', [(2, True, False), (4, True, True),
                                                         (2, False, True)])
def test_cpu_fast_module_equals_mmcv_module_forward_and_backward(ref_dim, batch_first, padding):
    from mmrvos.models.layers import CPUFastMultiScaleDeformableAttention, use_cpu_fast_msda
    torch.manual_seed(0)
    plain = MultiScaleDeformableAttention(
        embed_dims=16,
        num_heads=2,
        num_levels=2,
        num_points=3,
        dropout=0.0,
        batch_first=batch_first)
    plain.init_weights()
    plain.double()
    fast = MultiScaleDeformableAttention(
        embed_dims=16,
        num_heads=2,
        num_levels=2,
        num_points=3,
        dropout=0.0,
        batch_first=batch_first).double()
    fast.load_state_dict(plain.state_dict())
    holder = torch.nn.Sequential(fast)
    assert use_cpu_fast_msda(holder) == 1 and type(fast) is CPUFastMultiScaleDeformableAttention
    assert fast.state_dict().keys() == plain.state_dict().keys()
    shapes = torch.tensor([[6, 5], [3, 3]])
    start = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    n_val = int(shapes.prod(1).sum())
    g = torch.Generator().manual_seed(1)
    query = torch.randn(2, 4, 16, dtype=torch.float64, generator=g)
    value = torch.randn(2, n_val, 16, dtype=torch.float64, generator=g)
    pos = torch.randn(2, 4, 16, dtype=torch.float64, generator=g)
    ref = torch.rand(2, 4, 2, ref_dim, dtype=torch.float64, generator=g) * 0.8 + 0.1
    mask = (torch.rand(2, n_val, generator=g) > 0.7) if padding else None
    outs, grads = [], []
    for mod in (plain, fast):
        q, v = query.clone().requires_grad_(), value.clone().requires_grad_()
        qq, vv, pp = (q, v, pos) if batch_first else (q.transpose(0, 1), v.transpose(0, 1),
                                                      pos.transpose(0, 1))
        out = mod(
            qq,
            value=vv,
            query_pos=pp,
            reference_points=ref,
            spatial_shapes=shapes,
            level_start_index=start,
            key_padding_mask=mask)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        outs.append(out)
        grads.append((q.grad, v.grad, mod.sampling_offsets.weight.grad))
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-10, atol=1e-10)
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-10)

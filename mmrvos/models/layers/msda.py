"""Multi-scale deformable attention with a leaner CPU path.

mmcv 2.1 has no CPU kernel for the op; its fallback ``multi_scale_deformable_attn_pytorch``
samples every level with ``grid_sample``, stacks the levels into one
(B*heads, C, Q, levels*points) tensor, multiplies it by the attention weights and sums. On a
CPU that stacked temporary (80 MB per frame and layer in Grounding DINO's encoder at 360x640)
and the passes over it cost more than the sampling itself. :func:`multi_scale_deformable_attn_cpu`
reduces each level's samples with its weights as soon as they are drawn (one small
(B*heads, C, Q) accumulator), which gives the same sums.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import MultiScaleDeformableAttention
from torch import Tensor

from .class_swap import swap_module_class


def multi_scale_deformable_attn_cpu(value: Tensor, spatial_shapes: Tensor,
                                    sampling_locations: Tensor,
                                    attention_weights: Tensor) -> Tensor:
    """Multi-scale deformable attention (bilinear sampling, zero padding, pixel-centre
    convention as ``grid_sample(align_corners=False)``), level by level.

    Args:
        value (Tensor): (B, S, heads, C_h) with S = sum_l H_l * W_l.
        spatial_shapes (Tensor): (levels, 2) (H_l, W_l).
        sampling_locations (Tensor): (B, Q, heads, levels, points, 2) (x, y) in [0, 1].
        attention_weights (Tensor): (B, Q, heads, levels, points).

    Returns:
        Tensor: (B, Q, heads * C_h).
    """
    bs, _, heads, dims = value.shape
    _, queries, _, levels, points, _ = sampling_locations.shape
    # reduced precision (autocast) samples and accumulates in float32, as grid_sample would
    dtype = torch.float32 if value.dtype in (torch.float16, torch.bfloat16) else value.dtype
    value = value.to(dtype)
    # Points before queries: grid_sample then returns (heads, C_h, P, Q) and each point's
    # (heads, C_h, Q) slice is contiguous along Q, so the weighted sum is P fused
    # multiply-adds over contiguous rows (a reduction over a trailing axis of 4 is slow).
    grids = (2 * sampling_locations - 1).to(dtype).permute(0, 2, 3, 4, 1, 5)  # B,h,L,P,Q,2
    weights = attention_weights.to(dtype).permute(0, 2, 3, 4, 1).unsqueeze(-2).contiguous()
    # weights: B, heads, L, P, 1, Q
    out = value.new_zeros(bs, heads, dims, queries)
    start = 0
    for lvl, (h, w) in enumerate(spatial_shapes.tolist()):
        level = value[:, start:start + h * w]  # B, H*W, heads, C_h
        start += h * w
        if h * w > queries * points:
            # a large map sampled at few points (the mask decoder's stride-4 map): read it
            # in place as a strided (heads, C_h, H, W) view per clip; a contiguous copy
            # would cost more than the sampling
            sampled = torch.stack([
                F.grid_sample(
                    level[b].permute(1, 2, 0).unflatten(2, (h, w)),
                    grids[b, :, lvl],
                    mode='bilinear',
                    padding_mode='zeros',
                    align_corners=False) for b in range(bs)
            ])
        else:
            fmap = level.permute(0, 2, 3, 1).reshape(bs * heads, dims, h, w)
            sampled = F.grid_sample(
                fmap,
                grids[:, :, lvl].flatten(0, 1),
                mode='bilinear',
                padding_mode='zeros',
                align_corners=False)
            sampled = sampled.view(bs, heads, dims, points, queries)
        for point in range(points):
            out.addcmul_(sampled[:, :, :, point], weights[:, :, lvl, point])
    return out.reshape(bs, heads * dims, queries).transpose(1, 2)


class CPUFastMultiScaleDeformableAttention(MultiScaleDeformableAttention):
    """mmcv's ``MultiScaleDeformableAttention`` (same arguments, parameters and results) whose
    CPU forward uses :func:`multi_scale_deformable_attn_cpu`; on CUDA (and MLU) it is mmcv's
    forward with the compiled op."""

    def forward(self,
                query: Tensor,
                key: Optional[Tensor] = None,
                value: Optional[Tensor] = None,
                identity: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None,
                key_padding_mask: Optional[Tensor] = None,
                reference_points: Optional[Tensor] = None,
                spatial_shapes: Optional[Tensor] = None,
                level_start_index: Optional[Tensor] = None,
                **kwargs) -> Tensor:
        """See ``mmcv.ops.MultiScaleDeformableAttention.forward``: query (B, Q, C) (or
        (Q, B, C) unless ``batch_first``), value (B, S, C), reference_points
        (B, Q, levels, 2 or 4), key_padding_mask (B, S) True on padding."""
        src = query if value is None else value
        if src.device.type != 'cpu':
            return super().forward(query, key, value, identity, query_pos, key_padding_mask,
                                   reference_points, spatial_shapes, level_start_index, **kwargs)
        value = src
        identity = query if identity is None else identity
        if query_pos is not None:
            query = query + query_pos
        if not self.batch_first:
            query, value = query.permute(1, 0, 2), value.permute(1, 0, 2)
        bs, num_query, _ = query.shape
        num_value = value.shape[1]
        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        value = value.view(bs, num_value, self.num_heads, -1)
        offsets = self.sampling_offsets(query).view(bs, num_query, self.num_heads, self.num_levels,
                                                    self.num_points, 2)
        weights = self.attention_weights(query).view(bs, num_query, self.num_heads,
                                                     self.num_levels * self.num_points).softmax(-1)
        weights = weights.view(bs, num_query, self.num_heads, self.num_levels, self.num_points)
        if reference_points.shape[-1] == 2:
            normaliser = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)
            locations = reference_points[:, :, None, :, None, :] + \
                offsets / normaliser[None, None, None, :, None, :]
        elif reference_points.shape[-1] == 4:
            locations = reference_points[:, :, None, :, None, :2] + \
                offsets / self.num_points * reference_points[:, :, None, :, None, 2:] * 0.5
        else:
            raise ValueError('Last dim of reference_points must be 2 or 4, got '
                             f'{reference_points.shape[-1]}')
        output = self.output_proj(
            multi_scale_deformable_attn_cpu(value, spatial_shapes, locations, weights))
        if not self.batch_first:
            output = output.permute(1, 0, 2)
        return self.dropout(output) + identity


def use_cpu_fast_msda(model: nn.Module) -> int:
    """Give every plain mmcv ``MultiScaleDeformableAttention`` of ``model`` the CPU path of
    :class:`CPUFastMultiScaleDeformableAttention`, in place (the instances keep their
    parameters, buffers and state-dict keys; only the class of the module changes).

    Returns:
        int: the number of modules switched.
    """
    return swap_module_class(model, MultiScaleDeformableAttention,
                             CPUFastMultiScaleDeformableAttention)

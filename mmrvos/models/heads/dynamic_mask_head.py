"""Mask heads of the paper's Grounding DINO baselines (G-DINO+SH and G-DINO+DH).

Both accept the call signature of :class:`GroundingMaskDecoder`, so they slot into
``ReferDINOHead(mask_decoder=dict(type=...))`` by config only; the arguments they do not use
(text, padding, query-position head) are accepted and ignored.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.layers.transformer.utils import MLP
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor


def _check_inputs(queries: Tensor, boxes: Tensor, mask_feats: Tensor) -> None:
    """Raise a clear error for inputs of the wrong rank or mismatched batch/query sizes."""
    if queries.dim() != 3 or boxes.dim() != 3 or boxes.shape[-1] != 4 or mask_feats.dim() != 4:
        raise ValueError('expected queries (B, Q, C), boxes (B, Q, 4) and mask_feats '
                         f'(B, C, h, w); got {tuple(queries.shape)}, {tuple(boxes.shape)}, '
                         f'{tuple(mask_feats.shape)}')
    if queries.shape[:2] != boxes.shape[:2] or queries.shape[0] != mask_feats.shape[0]:
        raise ValueError(f'batch/query sizes differ: queries {tuple(queries.shape)}, boxes '
                         f'{tuple(boxes.shape)}, mask_feats {tuple(mask_feats.shape)}')


@MODELS.register_module()
class StaticMaskHead(BaseModule):
    """Static mask head (G-DINO+SH): ``mask = MLP(query) . F_seg``.

    The same (static) pixel map is dotted with a per-query mask embedding; the box does not
    enter the mask, so mask gradients do not reach the box branch.

    Args:
        embed_dims (int): C of the queries. mask_channels (int): channels of F_seg
            (defaults to ``embed_dims``). num_mlp_layers (int): layers of the query MLP
            (0: the query itself is the mask embedding). Defaults to 3.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 mask_channels: Optional[int] = None,
                 num_mlp_layers: int = 3,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        mask_channels = mask_channels or embed_dims
        if num_mlp_layers == 0 and mask_channels != embed_dims:
            raise ValueError('num_mlp_layers=0 needs mask_channels == embed_dims')
        self.embed_dims = embed_dims
        self.mask_channels = mask_channels
        self.mask_embed = MLP(embed_dims, embed_dims, mask_channels, num_mlp_layers) \
            if num_mlp_layers > 0 else nn.Identity()

    def forward(self,
                queries: Tensor,
                boxes: Tensor,
                mask_feats: Tensor,
                memory_text: Optional[Tensor] = None,
                text_attention_mask: Optional[Tensor] = None,
                mask_padding: Optional[Tensor] = None,
                valid_ratio: Optional[Tensor] = None,
                query_pos_head: Optional[nn.Module] = None) -> Tensor:
        """Mask logits.

        Args:
            queries (Tensor): (B, Q, C). boxes (Tensor): (B, Q, 4), unused.
            mask_feats (Tensor): (B, C_m, h, w) F_seg at stride 4. Other arguments unused.

        Returns:
            Tensor: (B, Q, h, w) mask logits.
        """
        _check_inputs(queries, boxes, mask_feats)
        if mask_feats.shape[1] != self.mask_channels:
            raise ValueError(f'StaticMaskHead expects {self.mask_channels}-channel mask_feats, '
                             f'got {mask_feats.shape[1]}')
        return torch.einsum('bqc,bchw->bqhw', self.mask_embed(queries), mask_feats)


def relative_coords(boxes: Tensor,
                    size: Tuple[int, int],
                    valid_ratio: Optional[Tensor] = None) -> Tensor:
    """Offsets from the box centre of every query to every pixel centre of the mask map.

    Coordinates are normalised by the valid (unpadded) image size, like the boxes, so the
    offsets are scale-free (the official ReferFormer / ReferDINO code uses pixel offsets;
    CondInst divides them by a size of interest).

    Args:
        boxes (Tensor): (B, Q, 4) normalised cxcywh. size (tuple): (h, w) of the mask map.
        valid_ratio (Tensor, optional): (B, 2) valid (w, h) fraction of the map.

    Returns:
        Tensor: (B, Q, 2, h, w), channel 0 = ``cx - x``, channel 1 = ``cy - y``.
    """
    bsz = boxes.shape[0]
    h, w = size
    if valid_ratio is None:
        valid_ratio = boxes.new_ones(bsz, 2)
    xs = (torch.arange(w, device=boxes.device, dtype=boxes.dtype) + 0.5) / w
    ys = (torch.arange(h, device=boxes.device, dtype=boxes.dtype) + 0.5) / h
    xs = xs[None] / valid_ratio[:, :1]  # (B, w), in units of the valid width
    ys = ys[None] / valid_ratio[:, 1:]
    dx = boxes[..., 0, None, None] - xs[:, None, None, :]  # (B, Q, 1, w)
    dy = boxes[..., 1, None, None] - ys[:, None, :, None]  # (B, Q, h, 1)
    return torch.stack([dx.expand(-1, -1, h, w), dy.expand(-1, -1, h, w)], 2)


@MODELS.register_module(name='RVOSDynamicMaskHead')
class DynamicMaskHead(BaseModule):
    """CondInst dynamic mask head with relative coordinates (G-DINO+DH, ReferFormer).

    Registered as ``'RVOSDynamicMaskHead'``: mmdet's registry already holds Sparse R-CNN's
    ``DynamicMaskHead``.

    A controller MLP turns every query into the weights of a small per-query network of
    ``num_dynamic_layers`` 1x1 convolutions (``in -> dyn -> ... -> 1``, ReLU between). Its
    input is F_seg reduced to ``reduced_channels`` by a 1x1 conv, concatenated with the
    :func:`relative_coords` to the query's predicted box centre (so mask gradients reach the
    box branch through the coordinates).

    Args:
        embed_dims (int): C of the queries. in_channels (int): channels of F_seg.
        reduced_channels (int, optional): channels after the 1x1 reduction; None feeds F_seg
            as is (ReferFormer: its pixel decoder already outputs the mask width).
        dynamic_channels (int): width of the dynamic layers. Defaults to 8.
        num_dynamic_layers (int): dynamic 1x1 convs. Defaults to 3.
        controller_layers (int): layers of the controller MLP (official ReferDINO DH: 1,
            ReferFormer: 3). Defaults to 1.
        rel_coord (bool): concatenate relative coordinates. Defaults to True.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 in_channels: int = 256,
                 reduced_channels: Optional[int] = 8,
                 dynamic_channels: int = 8,
                 num_dynamic_layers: int = 3,
                 controller_layers: int = 1,
                 rel_coord: bool = True,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_dynamic_layers < 1:
            raise ValueError(f'num_dynamic_layers must be >= 1, got {num_dynamic_layers}')
        self.in_channels = in_channels
        self.reduce = nn.Conv2d(in_channels, reduced_channels, 1) if reduced_channels else None
        feat_channels = reduced_channels or in_channels
        self.rel_coord = rel_coord
        widths = [feat_channels + (2 if rel_coord else 0)] + \
            [dynamic_channels] * (num_dynamic_layers - 1) + [1]
        self.layer_shapes: List[Tuple[int, int]] = list(zip(widths[1:], widths[:-1]))
        num_params = sum(o * i + o for o, i in self.layer_shapes)
        self.controller = MLP(embed_dims, embed_dims, num_params, controller_layers)

    @property
    def num_params(self) -> int:
        """Dynamic parameters generated per query."""
        return sum(o * i + o for o, i in self.layer_shapes)

    def init_weights(self) -> None:
        super().init_weights()
        for layer in self.controller.layers:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def split_params(self, params: Tensor) -> List[Tuple[Tensor, Tensor]]:
        """(B, Q, P) controller output -> per layer (weight (B, Q, out, in), bias (B, Q, out))."""
        layers, start = [], 0
        for out_c, in_c in self.layer_shapes:
            weight = params[..., start:start + out_c * in_c]
            start += out_c * in_c
            bias = params[..., start:start + out_c]
            start += out_c
            layers.append((weight.reshape(*params.shape[:2], out_c, in_c), bias))
        return layers

    def forward(self,
                queries: Tensor,
                boxes: Tensor,
                mask_feats: Tensor,
                memory_text: Optional[Tensor] = None,
                text_attention_mask: Optional[Tensor] = None,
                mask_padding: Optional[Tensor] = None,
                valid_ratio: Optional[Tensor] = None,
                query_pos_head: Optional[nn.Module] = None) -> Tensor:
        """Mask logits by per-query dynamic convolution.

        Args:
            queries (Tensor): (B, Q, C). boxes (Tensor): (B, Q, 4) normalised cxcywh.
            mask_feats (Tensor): (B, C_in, h, w) F_seg at stride 4.
            valid_ratio (Tensor, optional): (B, 2) valid (w, h) fraction of F_seg.
            Other arguments are unused.

        Returns:
            Tensor: (B, Q, h, w) mask logits.
        """
        _check_inputs(queries, boxes, mask_feats)
        if mask_feats.shape[1] != self.in_channels:
            raise ValueError(f'DynamicMaskHead expects {self.in_channels}-channel mask_feats, '
                             f'got {mask_feats.shape[1]}')
        bsz, num_q = queries.shape[:2]
        h, w = mask_feats.shape[-2:]
        feats = self.reduce(mask_feats) if self.reduce is not None else mask_feats
        x = feats[:, None].expand(bsz, num_q, *feats.shape[1:])  # (B, Q, C', h, w)
        if self.rel_coord:
            x = torch.cat([x, relative_coords(boxes, (h, w), valid_ratio).to(x.dtype)], 2)
        layers = self.split_params(self.controller(queries))
        for i, (weight, bias) in enumerate(layers):
            x = torch.einsum('bqoi,bqihw->bqohw', weight, x) + bias[..., None, None]
            if i < len(layers) - 1:
                x = F.relu(x)
        return x[:, :, 0]

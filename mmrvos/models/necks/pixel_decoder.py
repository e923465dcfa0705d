"""FPN pixel decoder: encoder memory (strides 32/16/8) + stride-4 backbone map -> F_seg."""
from typing import Sequence

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor


@MODELS.register_module()
class RVOSPixelDecoder(BaseModule):
    """Top-down FPN pixel decoder with the layout of the official ReferDINO code.

    The coarsest encoder level (stride 32, ``in_channels``) goes through two 3x3
    conv + GroupNorm + ReLU blocks (``in -> in -> in/2``); then, for each finer input
    (stride 16 and 8 encoder memory, then the stride-4 backbone feature), the map is upsampled
    (nearest), a 1x1 adapter of that input is added and a 3x3 conv + GN + ReLU halves the
    channels again (``in/4``, ``in/8``, ``in/16``). A final 3x3 conv maps to ``out_channels``.
    Channels shrink as the resolution grows, which keeps the stride-4 stage cheap.

    Args:
        in_channels (int): channels of the encoder memory (d = 256).
        stride4_channels (int): channels of the stride-4 backbone feature.
        out_channels (int): channels of F_seg (the mask embedding width). Defaults to 256.
        num_groups (int): GroupNorm groups. Defaults to 8.
    """

    def __init__(
        self,
        in_channels: int = 256,
        stride4_channels: int = 96,
        out_channels: int = 256,
        num_groups: int = 8,
        init_cfg=dict(type='Kaiming', layer='Conv2d', a=1, distribution='uniform')
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        dims = [
            in_channels, in_channels // 2, in_channels // 4, in_channels // 8, in_channels // 16
        ]
        norm = dict(type='GN', num_groups=num_groups)
        self.stem = nn.Sequential(
            ConvModule(dims[0], dims[0], 3, padding=1, bias=True, norm_cfg=norm),
            ConvModule(dims[0], dims[1], 3, padding=1, bias=True, norm_cfg=norm))
        lateral_in = [in_channels, in_channels, stride4_channels]
        self.adapters = nn.ModuleList([nn.Conv2d(c, d, 1) for c, d in zip(lateral_in, dims[1:4])])
        self.fuse = nn.ModuleList([
            ConvModule(d, d2, 3, padding=1, bias=True, norm_cfg=norm)
            for d, d2 in zip(dims[1:4], dims[2:5])
        ])
        self.out_conv = nn.Conv2d(dims[4], out_channels, 3, padding=1)

    def forward(self, memory_levels: Sequence[Tensor], stride4: Tensor) -> Tensor:
        """Fuse features.

        Args:
            memory_levels (list[Tensor]): encoder memory maps from fine to coarse, each
                (B, C_in, H_l, W_l) at strides 8, 16, 32 (extra coarser levels are ignored).
            stride4 (Tensor): (B, C_4, H/4, W/4) backbone feature.

        Returns:
            Tensor: F_seg, (B, C_out, H/4, W/4).
        """
        s8, s16, s32 = memory_levels[:3]
        x = self.stem(s32)
        for adapter, fuse, lateral in zip(self.adapters, self.fuse, (s16, s8, stride4)):
            lat = adapter(lateral)
            x = fuse(lat + F.interpolate(x, size=lat.shape[-2:], mode='nearest'))
        return self.out_conv(x)

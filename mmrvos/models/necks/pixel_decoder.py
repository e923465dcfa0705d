"""FPN pixel decoder: encoder memory (strides 32/16/8) + stride-4 backbone map -> F_seg."""
from typing import List, Sequence

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor


@MODELS.register_module()
class RVOSPixelDecoder(BaseModule):
    """Top-down FPN (conv + GroupNorm + ReLU, nearest upsampling) producing the mask features.

    Starting from the coarsest encoder level, each step upsamples (nearest) to the next finer
    level, adds that level's lateral projection and applies a 3x3 conv; the last step fuses the
    stride-4 backbone feature.

    Args:
        in_channels (int): channels of the encoder memory levels (d = 256).
        stride4_channels (int): channels of the stride-4 backbone feature.
        out_channels (int): channels of F_seg. Defaults to 256.
        num_groups (int): GroupNorm groups. Defaults to 32.
    """

    def __init__(self, in_channels: int = 256, stride4_channels: int = 96,
                 out_channels: int = 256, num_memory_levels: int = 3, num_groups: int = 32,
                 init_cfg=dict(type='Xavier', layer='Conv2d', distribution='uniform')) -> None:
        super().__init__(init_cfg=init_cfg)
        norm = dict(type='GN', num_groups=num_groups)
        self.num_memory_levels = num_memory_levels
        self.laterals = nn.ModuleList(
            [ConvModule(in_channels, out_channels, 1, norm_cfg=norm, act_cfg=None)
             for _ in range(num_memory_levels - 1)] +
            [ConvModule(stride4_channels, out_channels, 1, norm_cfg=norm, act_cfg=None)])
        self.top = ConvModule(in_channels, out_channels, 3, padding=1, norm_cfg=norm)
        self.outputs = nn.ModuleList(
            [ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=norm)
             for _ in range(num_memory_levels)])

    def forward(self, memory_levels: Sequence[Tensor], stride4: Tensor) -> Tensor:
        """Fuse features.

        Args:
            memory_levels (list[Tensor]): encoder memory maps from fine to coarse, each
                (B, C_in, H_l, W_l) (strides 8, 16, 32; extra coarser levels are ignored).
            stride4 (Tensor): (B, C_4, H/4, W/4) backbone feature.

        Returns:
            Tensor: F_seg, (B, C_out, H/4, W/4).
        """
        levels: List[Tensor] = list(memory_levels[:self.num_memory_levels])[::-1]
        levels.append(stride4)  # coarse -> fine: s32, s16, s8, s4
        y = self.top(levels[0])
        for lateral, output, x in zip(self.laterals, self.outputs, levels[1:]):
            y = output(lateral(x) + F.interpolate(y, size=x.shape[-2:], mode='nearest'))
        return y

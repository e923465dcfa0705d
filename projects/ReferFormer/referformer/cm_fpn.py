"""Cross-modal feature pyramid network (CM-FPN) of ReferFormer."""
from typing import List, Optional, Sequence

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from .fusion import VisionLanguageBlock


@MODELS.register_module()
class CrossModalFPN(BaseModule):
    """Top-down FPN over (stride-4 backbone map, encoder memory at strides 8/16/32) with a
    :class:`VisionLanguageBlock` on every level (spatial reduction 8/4/2/1 from fine to coarse).

    Per level (coarse to fine): 1x1 lateral conv + GN -> vision-language block -> add the
    nearest-upsampled coarser output -> 3x3 conv + GN + ReLU. A final 3x3 conv gives F_seg.

    Args:
        in_channels (list[int]): channels of the stride 4, 8, 16, 32 inputs.
        conv_channels (int): FPN width (= C of the text features). mask_channels (int): F_seg.
        num_heads (int): attention heads. feedforward_channels (int): block FFN width.
        sr_ratios (list[int]): spatial reduction per level, fine to coarse.
        num_groups (int): GroupNorm groups.
    """

    def __init__(
        self,
        in_channels: Sequence[int] = (256, 256, 256, 256),
        conv_channels: int = 256,
        mask_channels: int = 256,
        num_heads: int = 8,
        feedforward_channels: int = 2048,
        sr_ratios: Sequence[int] = (8, 4, 2, 1),
        num_groups: int = 8,
        init_cfg=dict(type='Xavier', layer='Conv2d', distribution='uniform')
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != 4 or len(sr_ratios) != 4:
            raise ValueError('CrossModalFPN takes 4 levels (strides 4, 8, 16, 32)')
        norm = dict(type='GN', num_groups=num_groups)
        self.laterals = nn.ModuleList([
            ConvModule(c, conv_channels, 1, bias=False, norm_cfg=norm, act_cfg=None)
            for c in in_channels
        ])
        self.outputs = nn.ModuleList([
            ConvModule(conv_channels, conv_channels, 3, padding=1, bias=False, norm_cfg=norm)
            for _ in in_channels
        ])
        self.blocks = nn.ModuleList([
            VisionLanguageBlock(conv_channels, num_heads, feedforward_channels, sr)
            for sr in sr_ratios
        ])
        self.mask_conv = nn.Conv2d(conv_channels, mask_channels, 3, padding=1)

    def forward(self, feats: List[Tensor], poses: List[Tensor], paddings: List[Optional[Tensor]],
                text: dict, num_frames: int) -> Tensor:
        """Fuse the pyramid.

        Args:
            feats (list[Tensor]): 4 maps (B*T, C_l, h_l, w_l), strides 4, 8, 16, 32.
            poses (list[Tensor]): 4 position maps (B*T, conv_channels, h_l, w_l).
            paddings (list[Tensor]): 4 masks (B*T, h_l, w_l) True on padding (or None).
            text (dict): ``words`` (B, L, C), ``pos`` (B, L, C), ``padding`` (B, L).
            num_frames (int): T.

        Returns:
            Tensor: F_seg (B*T, mask_channels, H/4, W/4).
        """
        y = None
        for lvl in range(3, -1, -1):
            x = self.laterals[lvl](feats[lvl])
            x = self.blocks[lvl](x, poses[lvl], paddings[lvl], text['words'], text['pos'],
                                 text['padding'], num_frames)
            if y is not None:
                x = x + F.interpolate(y, size=x.shape[-2:], mode='nearest')
            y = self.outputs[lvl](x)
        return self.mask_conv(y)

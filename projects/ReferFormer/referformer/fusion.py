"""Vision-language fusion: early fusion of the encoder inputs and the CM-FPN block."""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class VisionLanguageFusion(nn.Module):
    """Text-conditioned visual features: ``v * MHA(query=v, key=text+pos, value=text)``.

    Args:
        embed_dims (int): C. num_heads (int): heads.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(embed_dims, num_heads, batch_first=True)

    def forward(self, visual: Tensor, text: Tensor, text_pos: Tensor,
                text_padding: Optional[Tensor]) -> Tensor:
        """Args: visual (B, S, C), text (B, L, C), text_pos (B, L, C), text_padding (B, L).

        Returns: (B, S, C) text-modulated visual tokens.
        """
        out = self.attn(
            visual, text + text_pos, text, key_padding_mask=text_padding, need_weights=False)[0]
        return visual * out


class VisionLanguageBlock(nn.Module):
    """One CM-FPN fusion block over the T*h*w tokens of a clip.

    Spatially reduced self-attention (queries/keys/values downsampled by ``sr_ratio``
    in space, not in time; the output upsampled back), cross-attention from the pixels to the
    words, FFN; post-norm residuals.

    Args:
        embed_dims (int): C. num_heads (int): heads. feedforward_channels (int): FFN width.
        sr_ratio (int): spatial reduction factor. dropout (float): dropout.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 feedforward_channels: int = 2048,
                 sr_ratio: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.sr_ratio = sr_ratio
        self.self_attn = nn.MultiheadAttention(
            embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(
            embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(
            nn.Linear(embed_dims, feedforward_channels), nn.ReLU(True), nn.Dropout(dropout),
            nn.Linear(feedforward_channels, embed_dims))
        self.norms = nn.ModuleList([nn.LayerNorm(embed_dims) for _ in range(3)])

    def _reduce(self, x: Tensor, size) -> Tensor:
        """(B*T, C, h, w) -> (B*T, C, h', w') nearest downsampling."""
        return F.interpolate(x, size=size, mode='nearest') if self.sr_ratio > 1 else x

    def forward(self, x: Tensor, pos: Tensor, padding: Optional[Tensor], text: Tensor,
                text_pos: Tensor, text_padding: Optional[Tensor], num_frames: int) -> Tensor:
        """Fuse one FPN level.

        Args:
            x (Tensor): (B*T, C, h, w) visual map. pos (Tensor): (B*T, C, h, w) positions.
            padding (Tensor, optional): (B*T, h, w) True on padded pixels.
            text (Tensor): (B, L, C). text_pos (Tensor): (B, L, C).
            text_padding (Tensor, optional): (B, L) True on pads. num_frames (int): T.

        Returns:
            Tensor: (B*T, C, h, w).
        """
        bt, c, h, w = x.shape
        b, t = bt // num_frames, num_frames
        size = (max(1, h // self.sr_ratio), max(1, w // self.sr_ratio))

        def clip_tokens(m: Tensor) -> Tensor:  # (B*T, C, h, w) -> (B, T*h*w, C)
            return m.reshape(b, t, c, -1).permute(0, 1, 3, 2).reshape(b, -1, c)

        def clip_maps(tokens: Tensor, hh: int, ww: int) -> Tensor:  # inverse of clip_tokens
            return tokens.reshape(b, t, hh * ww, c).permute(0, 1, 3, 2).reshape(bt, c, hh, ww)

        qk = clip_tokens(self._reduce(x + pos, size))
        v = clip_tokens(self._reduce(x, size))
        key_pad = None
        if padding is not None:
            key_pad = self._reduce(padding[:, None].float(), size)[:, 0] > 0.5
            key_pad = key_pad.reshape(b, -1)
        out = self.self_attn(qk, qk, v, key_padding_mask=key_pad, need_weights=False)[0]
        out = clip_maps(out, *size)
        if self.sr_ratio > 1:
            out = F.interpolate(out, size=(h, w), mode='bilinear', align_corners=False)
        tokens = self.norms[0](clip_tokens(x) + clip_tokens(out))
        pos_tokens = clip_tokens(pos)
        out = self.cross_attn(
            tokens + pos_tokens,
            text + text_pos,
            text,
            key_padding_mask=text_padding,
            need_weights=False)[0]
        tokens = self.norms[1](tokens + out)
        tokens = self.norms[2](tokens + self.ffn(tokens))
        return clip_maps(tokens, h, w)

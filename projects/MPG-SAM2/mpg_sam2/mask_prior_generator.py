"""MPG-SAM 2's mask prior generator: per-frame mask priors and the global video feature from
BEiT-3's patch and [CLS] tokens of all frames of a clip."""
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor
from transformers.models.sam2_video.modeling_sam2_video import get_1d_sine_pe


class VideoSelfAttentionLayer(nn.Module):
    """Post-norm transformer encoder layer (attention, ReLU FFN) over all patch tokens of all
    frames: spatio-temporal self-attention. Sequence-first: (S, B, D)."""

    def __init__(self, embed_dims: int, num_heads: int, ffn_dims: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout)
        self.linear1 = nn.Linear(embed_dims, ffn_dims)
        self.linear2 = nn.Linear(ffn_dims, embed_dims)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm1(x + self.dropout1(self.self_attn(x, x, x, need_weights=False)[0]))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(x))))
        return self.norm2(x + self.dropout2(ffn))


class GatedCrossAttention(nn.Module):
    """``query * MultiheadAttention(query, memory, memory)``: the [CLS] tokens gated by what
    they read from the patch tokens (no residual, no norm). Sequence-first."""

    def __init__(self, embed_dims: int, num_heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=0.0)

    def forward(self, query: Tensor, memory: Tensor) -> Tensor:
        return query * self.attn(query, memory, memory, need_weights=False)[0]


@MODELS.register_module()
class MaskPriorGenerator(BaseModule):
    """Mask priors and the global video feature (MPG-SAM 2, Sec. 3.2; eq. 1-3).

    The patch tokens of all T frames attend to each other (one post-norm layer), each frame's
    [CLS] token reads them (gated cross-attention) and is projected to a per-channel filter;
    the filtered patch tokens give the frame's mask prior (a linear score, sigmoid) and,
    projected to the SAM 2 width with a sine encoding of the frame index added, the global
    video feature V_g.

    Args:
        embed_dims (int): D, BEiT-3's width.
        out_dims (int): C, SAM 2's width (V_g's channels).
        num_heads (int): heads of both attentions (8).
        ffn_dims (int): feed-forward width of the self-attention layer (4 * D).
        dropout (float): dropout of the self-attention layer (0.1).
    """

    def __init__(self,
                 embed_dims: int = 1024,
                 out_dims: int = 256,
                 num_heads: int = 8,
                 ffn_dims: int = 4096,
                 dropout: float = 0.1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.out_dims = out_dims
        self.video_self_attn = VideoSelfAttentionLayer(embed_dims, num_heads, ffn_dims, dropout)
        self.class_token_attn = GatedCrossAttention(embed_dims, num_heads)
        self.class_proj = nn.Linear(embed_dims, embed_dims)
        self.prior_head = nn.Linear(embed_dims, 1)
        self.global_proj = nn.Linear(embed_dims, out_dims)

    def forward(self, patch_tokens: Tensor, cls_tokens: Tensor,
                grid_size: int) -> Dict[str, Tensor]:
        """Priors of B clips.

        Args:
            patch_tokens (Tensor): (B, T, g*g, D) BEiT-3 patch tokens (row-major grid).
            cls_tokens (Tensor): (B, T, D) BEiT-3 [CLS] tokens.
            grid_size (int): g.

        Returns:
            dict: ``mask_prior`` (B, T, 1, g, g) probabilities; ``global_feat``
            (B, T, g*g, C), V_g with the frame-index encoding.
        """
        b, t, hw, d = patch_tokens.shape
        tokens = patch_tokens.permute(1, 2, 0, 3).reshape(t * hw, b, d)  # (T*g*g, B, D)
        tokens = self.video_self_attn(tokens)
        cls = self.class_token_attn(cls_tokens.transpose(0, 1), tokens)  # (T, B, D)
        filt = self.class_proj(cls).permute(1, 0, 2)[:, :, None]  # (B, T, 1, D)
        filtered = tokens.reshape(t, hw, b, d).permute(2, 0, 1, 3) * filt  # (B, T, g*g, D)
        prior = self.prior_head(filtered).sigmoid().reshape(b, t, 1, grid_size, grid_size)
        frame_pos = get_1d_sine_pe(
            torch.arange(t, device=tokens.device, dtype=torch.float32), self.out_dims)
        global_feat = self.global_proj(filtered) + frame_pos[None, :, None].to(filtered.dtype)
        return dict(mask_prior=prior, global_feat=global_feat)

"""MPG-SAM 2's hierarchical global-historical aggregator (Sec. 3.3): what SAM 2's mask decoder
adds to its pixel features and mask tokens from the global video feature, the sentence and
the object's history."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor


class FusionLayer(nn.Module):
    """Cross-attention from queries to a memory, then residual + LayerNorm, ReLU FFN,
    residual + LayerNorm (post-norm). Sequence-first: (S, B, C)."""

    def __init__(self, embed_dims: int, num_heads: int, ffn_dims: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout)
        self.linear1 = nn.Linear(embed_dims, ffn_dims)
        self.linear2 = nn.Linear(ffn_dims, embed_dims)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self,
                query: Tensor,
                memory: Tensor,
                query_pos: Optional[Tensor] = None,
                memory_pos: Optional[Tensor] = None) -> Tensor:
        """(Nq, B, C) queries read (Nk, B, C) memory -> (Nq, B, C)."""
        q = query if query_pos is None else query + query_pos
        k = memory if memory_pos is None else memory + memory_pos
        x = self.norm1(query + self.dropout1(self.attn(q, k, memory, need_weights=False)[0]))
        return self.norm2(x + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(x))))))


@MODELS.register_module()
class GlobalHistoricalAggregator(BaseModule):
    """Global and historical context for SAM 2's mask decoder.

    * Pixel level (global): the memory-conditioned image embedding (SAM 2's memory attention
      already gave it the historical context) attends to V_u = the global video feature V_g
      of all T frames, merged 2x2 (space-to-depth, then a linear layer), followed by the
      sentence's tokens.
    * Object level: the mask tokens attend to V_g (global), then to the object pointers of
      the frames SAM 2 remembers (historical; key positions = sine encoding of the normalised
      frame distance).

    Args:
        embed_dims (int): C (SAM 2's width).
        num_heads (int): 8. ffn_dims (int): 1024. dropout (float): 0.1.
        patch_merge (int): p, the side of the merged V_g patches (2).
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 ffn_dims: int = 1024,
                 dropout: float = 0.1,
                 patch_merge: int = 2,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.patch_merge = patch_merge
        self.pixel_global_fusion = FusionLayer(embed_dims, num_heads, ffn_dims, dropout)
        self.object_global_fusion = FusionLayer(embed_dims, num_heads, ffn_dims, dropout)
        self.object_history_fusion = FusionLayer(embed_dims, num_heads, ffn_dims, dropout)
        self.global_patch_proj = nn.Linear(embed_dims * patch_merge**2, embed_dims)

    def global_tokens(self, global_feat: Tensor, text_feats: Tensor) -> Tensor:
        """V_u, the pixel-level memory.

        Args:
            global_feat (Tensor): (B, T, g*g, C) V_g.
            text_feats (Tensor): (B, L, C) the sentence's tokens (projected).

        Returns:
            Tensor: (T*(g/p)^2 + L, B, C): merged patches ordered (t, row, col), then the text.
        """
        b, t, hw, c = global_feat.shape
        g, p = int(round(hw**0.5)), self.patch_merge
        if g * g != hw or g % p:
            raise ValueError(f'GlobalHistoricalAggregator: a {hw}-token grid cannot be merged '
                             f'{p}x{p}')
        x = global_feat.reshape(b, t, g // p, p, g // p, p, c)
        # channel index of a merged patch = c * p * p + p * row_in + col_in
        x = x.permute(0, 1, 2, 4, 6, 3, 5).reshape(b, t * (g // p)**2, c * p * p)
        merged = self.global_patch_proj(x)
        return torch.cat([merged, text_feats.to(merged.dtype)], dim=1).transpose(0, 1)

    def fuse_pixels(self, image_embed: Tensor, image_pe: Tensor, memory: Tensor) -> Tensor:
        """(B, C, s, s) image embedding with (B, C, s, s) positions reads (Nk, B, C) V_u."""
        b, c, h, w = image_embed.shape
        q = image_embed.flatten(2).permute(2, 0, 1)
        pos = image_pe.flatten(2).permute(2, 0, 1)
        out = self.pixel_global_fusion(q, memory.to(q.dtype), query_pos=pos)
        return out.permute(1, 2, 0).reshape(b, c, h, w)

    def fuse_mask_tokens(self,
                         mask_tokens: Tensor,
                         global_feat: Tensor,
                         pointers: Optional[Tensor] = None,
                         pointer_pos: Optional[Tensor] = None) -> Tensor:
        """Mask tokens with global and historical object context.

        Args:
            mask_tokens (Tensor): (B, M, C).
            global_feat (Tensor): (B, T*g*g, C) V_g flattened.
            pointers (Tensor, optional): (P, B, C) object pointers of remembered frames.
            pointer_pos (Tensor, optional): (P, B, C) their positions.

        Returns:
            Tensor: (B, M, C).
        """
        x = mask_tokens.transpose(0, 1)
        x = self.object_global_fusion(x, global_feat.transpose(0, 1).to(x.dtype))
        if pointers is not None:
            x = self.object_history_fusion(x, pointers.to(x.dtype), memory_pos=pointer_pos)
        return x.transpose(0, 1)

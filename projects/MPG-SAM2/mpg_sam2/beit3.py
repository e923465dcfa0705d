"""BEiT-3 (Wang et al., 2022): a multiway transformer that encodes an image and a sentence in
one sequence. Parameter names follow torchscale's ``BEiT3`` so the released BEiT-3 weights
(``beit3.*``) and the MPG-SAM 2 checkpoints (``mm_extractor.beit3.*``) load by prefix."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor


class Multiway(nn.Module):
    """Two copies of a module: ``A`` (vision expert) on the first ``split`` tokens of the
    sequence, ``B`` (language expert) on the rest."""

    def __init__(self, module_a: nn.Module, module_b: nn.Module) -> None:
        super().__init__()
        self.A = module_a
        self.B = module_b

    def forward(self, x: Tensor, split: int) -> Tensor:
        """(N, L, C) -> (N, L, C'), tokens ``[:split]`` through A, ``[split:]`` through B."""
        return torch.cat([self.A(x[:, :split]), self.B(x[:, split:])], dim=1)


def multiway_linear(in_dims: int, out_dims: int) -> Multiway:
    return Multiway(nn.Linear(in_dims, out_dims), nn.Linear(in_dims, out_dims))


def multiway_norm(dims: int, eps: float) -> Multiway:
    return Multiway(nn.LayerNorm(dims, eps=eps), nn.LayerNorm(dims, eps=eps))


class MultiwayAttention(nn.Module):
    """Multi-head self-attention with multiway q/k/v/out projections and a LayerNorm on the
    attention output before ``out_proj`` (torchscale's sub-LN)."""

    def __init__(self, embed_dims: int, num_heads: int, eps: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scaling = (embed_dims // num_heads)**-0.5
        self.q_proj = multiway_linear(embed_dims, embed_dims)
        self.k_proj = multiway_linear(embed_dims, embed_dims)
        self.v_proj = multiway_linear(embed_dims, embed_dims)
        self.out_proj = multiway_linear(embed_dims, embed_dims)
        self.inner_attn_ln = multiway_norm(embed_dims, eps)

    def forward(self, x: Tensor, split: int, key_padding: Optional[Tensor]) -> Tensor:
        """(N, L, C) tokens, (N, L) bool padding (True = padded) -> (N, L, C)."""
        n, length, c = x.shape
        heads = self.num_heads

        def split_heads(t: Tensor) -> Tensor:
            return t.view(n, length, heads, c // heads).transpose(1, 2)

        q = split_heads(self.q_proj(x, split) * self.scaling)
        k = split_heads(self.k_proj(x, split))
        v = split_heads(self.v_proj(x, split))
        logits = q @ k.transpose(-1, -2)  # (N, heads, L, L)
        if key_padding is not None:
            logits = logits.masked_fill(key_padding[:, None, None], float('-inf'))
        attn = F.softmax(logits, dim=-1, dtype=torch.float32).type_as(logits)
        out = (attn @ v).transpose(1, 2).reshape(n, length, c)
        return self.out_proj(self.inner_attn_ln(out, split), split)


class MultiwayFFN(nn.Module):
    """fc1 -> GELU (fp32) -> LayerNorm -> fc2 (one expert)."""

    def __init__(self, embed_dims: int, ffn_dims: int, eps: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, ffn_dims)
        self.fc2 = nn.Linear(ffn_dims, embed_dims)
        self.ffn_layernorm = nn.LayerNorm(ffn_dims, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc1(x)
        h = F.gelu(h.float()).type_as(h)
        return self.fc2(self.ffn_layernorm(h))


class MultiwayEncoderLayer(nn.Module):
    """Pre-LN transformer layer with multiway attention and feed-forward experts."""

    def __init__(self, embed_dims: int, num_heads: int, ffn_dims: int, eps: float) -> None:
        super().__init__()
        self.self_attn = MultiwayAttention(embed_dims, num_heads, eps)
        self.self_attn_layer_norm = multiway_norm(embed_dims, eps)
        self.ffn = Multiway(
            MultiwayFFN(embed_dims, ffn_dims, eps), MultiwayFFN(embed_dims, ffn_dims, eps))
        self.final_layer_norm = multiway_norm(embed_dims, eps)

    def forward(self, x: Tensor, split: int, key_padding: Optional[Tensor]) -> Tensor:
        x = x + self.self_attn(self.self_attn_layer_norm(x, split), split, key_padding)
        return x + self.ffn(self.final_layer_norm(x, split), split)


class VisionEmbedding(nn.Module):
    """16x16 patch embedding with a prepended [CLS] token (``mask_token`` is kept for the
    checkpoints' masked-image-modelling weight; unused here)."""

    def __init__(self, embed_dims: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dims, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))

    def forward(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) -> (N, 1 + H*W/p^2, C)."""
        x = self.proj(images).flatten(2).transpose(1, 2)
        return torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1)


class MultiwayEncoder(nn.Module):
    """Position embeddings (vision: ``A``, text: ``B``; both count from 2 as fairseq), the
    layers and the final multiway LayerNorm."""

    def __init__(self, embed_dims: int, num_heads: int, num_layers: int, ffn_dims: int,
                 num_vision_positions: int, max_text_positions: int, eps: float) -> None:
        super().__init__()
        self.embed_positions = nn.Module()
        self.embed_positions.A = nn.Embedding(num_vision_positions + 2, embed_dims)
        self.embed_positions.B = nn.Embedding(max_text_positions, embed_dims)
        self.layers = nn.ModuleList(
            [MultiwayEncoderLayer(embed_dims, num_heads, ffn_dims, eps) for _ in range(num_layers)])
        self.layer_norm = multiway_norm(embed_dims, eps)


@MODELS.register_module()
class BEiT3(BaseModule):
    """BEiT-3 encoder of one image and one sentence per sample.

    Args:
        embed_dims (int): D (1024 large, 768 base).
        num_heads (int): attention heads (16 large, 12 base).
        num_layers (int): layers (24 large, 12 base).
        ffn_dims (int): feed-forward width (4 * D).
        img_size (int): square input side (224).
        patch_size (int): 16.
        vocab_size (int): text vocabulary (64010 for BEiT-3's XLM-R sentencepiece + [SEG]).
        max_text_positions (int): text position table size (1024).
        layernorm_eps (float): 1e-5.
    """

    def __init__(self,
                 embed_dims: int = 1024,
                 num_heads: int = 16,
                 num_layers: int = 24,
                 ffn_dims: int = 4096,
                 img_size: int = 224,
                 patch_size: int = 16,
                 vocab_size: int = 64010,
                 max_text_positions: int = 1024,
                 layernorm_eps: float = 1e-5,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if img_size % patch_size:
            raise ValueError(f'BEiT3: img_size {img_size} is not a multiple of patch_size '
                             f'{patch_size}')
        self.embed_dims = embed_dims
        self.img_size = img_size
        self.grid_size = img_size // patch_size
        num_vision = self.grid_size**2 + 1
        self.text_embed = nn.Embedding(vocab_size, embed_dims)
        self.vision_embed = VisionEmbedding(embed_dims, patch_size)
        self.encoder = MultiwayEncoder(embed_dims, num_heads, num_layers, ffn_dims, num_vision,
                                       max_text_positions, layernorm_eps)

    def forward(self, images: Tensor, input_ids: Tensor, text_padding: Tensor) -> Tensor:
        """Encode images with their sentences.

        Args:
            images (Tensor): (N, 3, img, img) normalised RGB.
            input_ids (Tensor): (N, L) token ids.
            text_padding (Tensor): (N, L) bool, True where padded.

        Returns:
            Tensor: (N, 1 + g*g + L, D): [CLS], g x g patch tokens (row-major), L text tokens.
        """
        vision = self.vision_embed(images)
        split = vision.shape[1]
        text = self.text_embed(input_ids)
        pos = self.encoder.embed_positions
        vision = vision + pos.A.weight[2:2 + split]
        text = text + pos.B.weight[2:2 + text.shape[1]]
        x = torch.cat([vision, text], dim=1)
        padding = torch.cat([text_padding.new_zeros(len(x), split), text_padding.bool()], dim=1)
        x = x * (1 - padding[..., None].type_as(x))
        key_padding = padding if bool(padding.any()) else None
        for layer in self.encoder.layers:
            x = layer(x, split, key_padding)
        return self.encoder.layer_norm(x, split)

"""SAM 2's Hiera attention without the attention map that transformers computes and discards.

``transformers`` 4.57's ``Sam2MultiScaleAttention.forward`` first builds the full
``softmax(q k^T)`` map of every window (a matmul, a float32 softmax and copies per block), then
ignores it and calls the attention interface (SDPA) on the same query, key and value. The lean
version here runs only the second part: the same outputs without the wasted work. It is
applied to mmrvos' own SAM 2 models only (:func:`use_lean_sam2_attention`); transformers
itself, and SAM 2 models built by others, are not changed.
"""
from functools import lru_cache

import torch
from torch import nn


@lru_cache(maxsize=None)
def lean_attention_class():
    """The ``Sam2MultiScaleAttention`` subclass without the unused attention map, or None
    when transformers has no SAM 2 (made on first use: importing transformers' SAM 2 is not
    paid by ``import mmrvos``)."""
    try:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
        from transformers.models.sam2.modeling_sam2 import (Sam2MultiScaleAttention, do_pool,
                                                            eager_attention_forward)
    except ImportError:
        return None

    class LeanSam2MultiScaleAttention(Sam2MultiScaleAttention):
        """``Sam2MultiScaleAttention`` without the unused attention map (same parameters,
        same outputs)."""

        def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
            """(B, H, W, C) -> (B, H', W', C_out) (H', W': after query pooling)."""
            batch_size, height, width, _ = hidden_states.shape
            qkv = self.qkv(hidden_states).reshape(batch_size, height * width, 3,
                                                  self.num_attention_heads, -1)
            query, key, value = torch.unbind(qkv, 2)
            if self.query_stride:  # Q pooling at the stage changes
                query = do_pool(query.reshape(batch_size, height, width, -1), self.query_stride)
                height, width = query.shape[1:3]
                query = query.reshape(batch_size, height * width, self.num_attention_heads, -1)
            attention = eager_attention_forward
            if self.config._attn_implementation != 'eager':
                attention = ALL_ATTENTION_FUNCTIONS[self.config._attn_implementation]
            out, _ = attention(
                self,
                query.transpose(1, 2),
                key.transpose(1, 2),
                value.transpose(1, 2),
                attention_mask=None,
                is_causal=self.is_causal,
                scaling=self.scale,
                **kwargs)
            return self.proj(out.reshape(batch_size, height, width, -1))

    LeanSam2MultiScaleAttention.base = Sam2MultiScaleAttention
    return LeanSam2MultiScaleAttention


def use_lean_sam2_attention(model: nn.Module) -> int:
    """Make every ``Sam2MultiScaleAttention`` of ``model`` a lean one (in place; parameters
    and outputs unchanged). Returns how many were replaced."""
    lean = lean_attention_class()
    if lean is None:
        return 0
    count = 0
    for module in model.modules():
        if type(module) is lean.base:
            module.__class__ = lean
            count += 1
    return count


__all__ = ['use_lean_sam2_attention', 'lean_attention_class']

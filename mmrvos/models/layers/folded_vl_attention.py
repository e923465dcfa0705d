"""Grounding DINO's bidirectional image-text attention with the projections folded.

In the encoder's fusion layers (``BiMultiHeadAttention``), every image token goes through
three 256 -> 1024 / 1024 -> 256 projections (query, value, output), although it only ever
meets the L (~15) text tokens. Because the attention is linear in those projections, they
can be folded into small per-sentence matrices:

- scores: ``(x W_q^h + b_q^h) . k_s^h = x (W_q^h k_s^h) + b_q^h . k_s^h``, so the image side
  needs one (S, C) @ (C, heads * L) product instead of a (S, C) @ (C, 1024) projection;
- image output: ``sum_h sum_s p^h_s (v_s^h W_o^h)``, one (S, heads * L) @ (heads * L, C)
  product with the text values already passed through the output projection;
- text output: ``sum_q p^h_q (x_q W_v^h + b_v^h) = (sum_q p^h_q x_q) W_v^h + b_v^h sum_q p^h_q``,
  the image values are never projected at all.

Same parameters and state-dict keys; same results up to float rounding (the sums are
reassociated). The folded path runs in evaluation mode when every projection is a plain
Linear (or a LoRA-wrapped one whose adapters are merged or inactive); training and unmerged
adapters use mmdet's forward unchanged.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmdet.models.utils.vlfuse_helper import MAX_CLAMP_VALUE, BiMultiHeadAttention
from torch import Tensor

from .class_swap import swap_module_class

PROJECTIONS = ('v_proj', 'l_proj', 'values_v_proj', 'values_l_proj', 'out_v_proj', 'out_l_proj')


def plain_linear(module: nn.Module) -> Optional[nn.Linear]:
    """The ``nn.Linear`` that computes ``module``'s output on its own: ``module`` itself, or
    the base layer of a LoRA wrapper whose adapters are merged, disabled or absent;
    ``None`` when the wrapper would add an unmerged adapter's output."""
    if type(module) is nn.Linear:
        return module
    base = getattr(module, 'get_base_layer', None)
    if base is None:
        return None
    linear = base()
    if type(linear) is not nn.Linear:
        return None
    if getattr(module, 'merged', False) or getattr(module, 'disable_adapters', False) \
            or not getattr(module, 'active_adapters', None):
        return linear
    return None


class FoldedBiMultiHeadAttention(BiMultiHeadAttention):
    """mmdet's ``BiMultiHeadAttention`` (same arguments, parameters and results) that, at
    inference, folds its projections into per-sentence matrices (see the module docstring);
    5 large (S, C) x (C, 1024) products per layer become 2 of width heads * L."""

    def forward(self,
                vision: Tensor,
                lang: Tensor,
                attention_mask_v: Optional[Tensor] = None,
                attention_mask_l: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """vision (B, S, C_v) image tokens, lang (B, L, C_l) text tokens,
        attention_mask_v (B, S) True on padded image tokens, attention_mask_l (B, L) as
        mmdet's forward treats it. Returns the image (B, S, C_v) and text (B, L, C_l)
        outputs."""
        linears = [plain_linear(getattr(self, name)) for name in PROJECTIONS]
        if self.training or self.stable_softmax_2d or any(m is None for m in linears):
            return super().forward(vision, lang, attention_mask_v, attention_mask_l)
        q_proj, k_proj, vv_proj, vl_proj, ov_proj, ol_proj = linears
        bsz, tgt_len, v_dim = vision.shape
        src_len = lang.shape[1]
        heads, head_dim = self.num_heads, self.head_dim

        keys = k_proj(lang).view(bsz, src_len, heads, head_dim)
        # scores[b, q, h, s] = x_q . (scale W_q^h k_s^h) + scale b_q^h . k_s^h
        w_q = q_proj.weight.view(heads, head_dim, v_dim)
        fold_q = torch.einsum('hdc,bshd->bchs', w_q, keys).reshape(bsz, v_dim, heads * src_len)
        bias_q = torch.einsum('hd,bshd->bhs', q_proj.bias.view(heads, head_dim), keys)
        scores = torch.baddbmm(
            bias_q.reshape(bsz, 1, heads * src_len) * self.scale, vision, fold_q * self.scale)
        scores = scores.view(bsz, tgt_len, heads, src_len).permute(0, 2, 1, 3)  # B, h, S, L
        if self.clamp_min_for_underflow:
            scores = torch.clamp(scores, min=-MAX_CLAMP_VALUE)
        if self.clamp_max_for_overflow:
            scores = torch.clamp(scores, max=MAX_CLAMP_VALUE)

        # text side: softmax over the image tokens
        scores_t = scores.transpose(2, 3)  # B, h, L, S
        scores_l = scores_t - scores_t.max(dim=-1, keepdim=True)[0]
        if self.clamp_min_for_underflow:
            scores_l = torch.clamp(scores_l, min=-MAX_CLAMP_VALUE)
        if self.clamp_max_for_overflow:
            scores_l = torch.clamp(scores_l, max=MAX_CLAMP_VALUE)
        if attention_mask_v is not None:
            scores_l = scores_l.masked_fill(attention_mask_v[:, None, None, :], float('-inf'))
        probs_l = scores_l.softmax(dim=-1).reshape(bsz, heads * src_len, tgt_len)
        pooled = torch.bmm(probs_l, vision).view(bsz, heads, src_len, v_dim)
        w_vv = vv_proj.weight.view(heads, head_dim, v_dim)
        out_l = torch.einsum('bhsc,hdc->bshd', pooled, w_vv) + \
            probs_l.sum(-1).view(bsz, heads, src_len).transpose(1, 2)[..., None] * \
            vv_proj.bias.view(heads, head_dim)
        out_l = ol_proj(out_l.reshape(bsz, src_len, self.embed_dim))

        # image side: softmax over the text tokens
        if attention_mask_l is not None:
            assert attention_mask_l.dim() == 2
            additive = attention_mask_l.unsqueeze(1).unsqueeze(1)
            additive = additive.expand(bsz, 1, tgt_len, src_len)
            additive = additive.masked_fill(additive == 0, -9e15)
            scores = scores + additive
        probs_v = scores.softmax(dim=-1)  # B, h, S, L
        values_l = vl_proj(lang).view(bsz, src_len, heads, head_dim)
        w_ov = ov_proj.weight.view(-1, heads, head_dim)
        fold_o = torch.einsum('bshd,chd->bhsc', values_l, w_ov).reshape(bsz, heads * src_len, -1)
        out_v = torch.baddbmm(
            ov_proj.bias.view(1, 1, -1),
            probs_v.transpose(1, 2).reshape(bsz, tgt_len, heads * src_len), fold_o)
        return out_v, out_l


def use_folded_vl_attention(model: nn.Module) -> int:
    """Give every plain mmdet ``BiMultiHeadAttention`` of ``model`` the folded inference path
    of :class:`FoldedBiMultiHeadAttention`, in place (parameters, buffers and state-dict keys
    unchanged; only the class of the module changes).

    Returns:
        int: the number of modules switched.
    """
    return swap_module_class(model, BiMultiHeadAttention, FoldedBiMultiHeadAttention)

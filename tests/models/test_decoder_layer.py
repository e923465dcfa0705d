"""SwitchableGroundingDecoderLayer's attention blocks against independent references."""
import torch
import torch.nn.functional as F

from mmrvos.models.layers import SwitchableGroundingDecoderLayer


def _layer():
    torch.manual_seed(0)
    layer = SwitchableGroundingDecoderLayer(
        with_image_cross_attn=False,
        self_attn_cfg=dict(embed_dims=16, num_heads=2, dropout=0.0),
        cross_attn_text_cfg=dict(embed_dims=16, num_heads=2, dropout=0.0),
        cross_attn_cfg=dict(embed_dims=16, num_heads=2, dropout=0.0, num_levels=1),
        ffn_cfg=dict(embed_dims=16, feedforward_channels=32, ffn_drop=0.0))
    return layer.double().eval()


def test_text_keys_get_no_query_positions_when_lengths_agree():
    """The official decoder never adds query positions to the text keys. mmcv's
    MultiheadAttention does whenever Q == L: with 5 queries, a 5-token sentence must give the
    same output as the same sentence plus one masked token (L = 6)."""
    layer = _layer()
    g = torch.Generator().manual_seed(1)
    query = torch.randn(1, 5, 16, generator=g, dtype=torch.float64)
    pos = torch.randn(1, 5, 16, generator=g, dtype=torch.float64) * 3
    text = torch.randn(1, 5, 16, generator=g, dtype=torch.float64)
    padded = torch.cat([text, torch.randn(1, 1, 16, generator=g, dtype=torch.float64)], 1)
    mask5 = torch.zeros(1, 5, dtype=torch.bool)
    mask6 = torch.tensor([[False] * 5 + [True]])
    out5 = layer(query, query_pos=pos, memory_text=text, text_attention_mask=mask5)
    out6 = layer(query, query_pos=pos, memory_text=padded, text_attention_mask=mask6)
    torch.testing.assert_close(out5, out6, rtol=1e-12, atol=1e-12)


def test_self_attention_weights_are_softmax_of_scaled_scores():
    layer = _layer()
    g = torch.Generator().manual_seed(2)
    query = torch.randn(2, 4, 16, generator=g, dtype=torch.float64)
    pos = torch.randn(2, 4, 16, generator=g, dtype=torch.float64)
    text = torch.randn(2, 3, 16, generator=g, dtype=torch.float64)
    _, weights = layer(
        query,
        query_pos=pos,
        memory_text=text,
        text_attention_mask=torch.zeros(2, 3, dtype=torch.bool),
        need_attn_weights=True)
    mha = layer.self_attn.attn
    w_q, w_k, _ = mha.in_proj_weight.chunk(3)
    b_q, b_k, _ = mha.in_proj_bias.chunk(3)
    x = query + pos
    q = F.linear(x, w_q, b_q).view(2, 4, 2, 8).transpose(1, 2)
    k = F.linear(x, w_k, b_k).view(2, 4, 2, 8).transpose(1, 2)
    want = (q @ k.transpose(-1, -2) / 8**0.5).softmax(-1).mean(1)
    torch.testing.assert_close(weights, want, rtol=1e-10, atol=1e-12)

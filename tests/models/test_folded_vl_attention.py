"""FoldedBiMultiHeadAttention against mmdet's BiMultiHeadAttention forward (the reference:
the unfolded projections), in float64, with and without the image / text masks, with LoRA
adapters merged, and the fallback wherever folding would not be exact (training, unmerged
adapters)."""
import copy

import pytest
import torch
import torch.nn as nn
from mmdet.models.utils.vlfuse_helper import BiMultiHeadAttention

from mmrvos.models.layers import FoldedBiMultiHeadAttention, use_folded_vl_attention
from mmrvos.models.layers.folded_vl_attention import plain_linear
from mmrvos.models.layers.lora import inject_lora, merged_lora


def _pair(seed=0):
    torch.manual_seed(seed)
    ref = BiMultiHeadAttention(v_dim=16, l_dim=12, embed_dim=24, num_heads=3, dropout=0.0).double()
    for p in ref.parameters():
        p.data.normal_(0, 0.3)  # biases non-zero too
    folded = copy.deepcopy(ref)
    assert use_folded_vl_attention(folded) == 1
    assert type(folded) is FoldedBiMultiHeadAttention
    return ref.eval(), folded.eval()


def _inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    vision = torch.randn(2, 37, 16, generator=g, dtype=torch.float64)
    lang = torch.randn(2, 5, 12, generator=g, dtype=torch.float64)
    mask_v = torch.zeros(2, 37, dtype=torch.bool)
    mask_v[1, 30:] = True
    mask_l = torch.zeros(2, 5, dtype=torch.bool)
    mask_l[0, 3:] = True
    return vision, lang, mask_v, mask_l


@pytest.mark.parametrize('masks', ['none', 'both', 'image', 'text_float'])
def test_folded_equals_mmdet_forward(masks):
    ref, folded = _pair()
    vision, lang, mask_v, mask_l = _inputs()
    args = dict(
        none=(None, None),
        both=(mask_v, mask_l),
        image=(mask_v, None),
        text_float=(None, (~mask_l).double()))[masks]
    want = ref(vision, lang, *args)
    got = folded(vision, lang, *args)
    for w, g in zip(want, got):
        assert w.shape == g.shape
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)


def test_state_dict_unchanged_by_class_switch():
    ref, folded = _pair()
    assert list(ref.state_dict()) == list(folded.state_dict())


def test_merged_lora_folds_and_unmerged_falls_back():
    ref, folded = _pair()
    holder = nn.Module()
    holder.fusion = folded
    inject_lora(holder, targets=['fusion'], rank=2, alpha=2.0, exclude=[])
    for name, p in holder.named_parameters():
        if 'lora_B' in name:
            p.data.normal_(0, 0.3)
    holder.double().eval()
    vision, lang, mask_v, mask_l = _inputs()
    # reference: the LoRA-wrapped module through mmdet's (unfolded) forward
    want = BiMultiHeadAttention.forward(holder.fusion, vision, lang, mask_v, mask_l)
    assert plain_linear(holder.fusion.v_proj) is None  # unmerged adapters: no folding
    unmerged = holder.fusion(vision, lang, mask_v, mask_l)
    with merged_lora(holder):
        assert plain_linear(holder.fusion.v_proj) is not None
        merged = holder.fusion(vision, lang, mask_v, mask_l)
    for w, u, m in zip(want, unmerged, merged):
        torch.testing.assert_close(u, w, rtol=0, atol=0)
        torch.testing.assert_close(m, w, rtol=1e-9, atol=1e-9)
    # and the adapters do change the result (the check above is not vacuous)
    base = ref(vision, lang, mask_v, mask_l)
    assert (base[0] - want[0]).abs().max() > 1e-3


def test_training_uses_mmdet_forward(monkeypatch):
    _, folded = _pair()
    folded.train()
    calls = []
    original = BiMultiHeadAttention.forward
    monkeypatch.setattr(BiMultiHeadAttention, 'forward',
                        lambda self, *a: calls.append(1) or original(self, *a))
    vision, lang, _, _ = _inputs()
    folded(vision, lang)
    assert calls == [1]

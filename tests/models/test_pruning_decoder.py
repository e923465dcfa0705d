"""Confidence-aware query pruning."""
import math

import pytest
import torch
from mmdet.models.dense_heads.grounding_dino_head import ContrastiveEmbed
from mmdet.models.layers.transformer.utils import coordinate_to_encoding

from mmrvos.models.layers import PruningGroundingDinoDecoder, num_kept_queries, pruning_confidence

D = 256


def _decoder(num_layers=6, drop_rate=0.5, prune_mode='confidence'):
    layer = dict(
        self_attn_cfg=dict(embed_dims=D, num_heads=8, dropout=0.0),
        cross_attn_text_cfg=dict(embed_dims=D, num_heads=8, dropout=0.0),
        cross_attn_cfg=dict(embed_dims=D, num_heads=8, num_levels=1, num_points=1, dropout=0.0),
        ffn_cfg=dict(embed_dims=D, feedforward_channels=64, ffn_drop=0.0))
    dec = PruningGroundingDinoDecoder(
        num_layers=num_layers,
        layer_cfg=layer,
        return_intermediate=True,
        post_norm_cfg=None,
        drop_rate=drop_rate,
        prune_mode=prune_mode)
    dec.eval()
    return dec


def _inputs(bs=1, num_queries=900, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w, length = 4, 5, 6
    return dict(
        query=torch.randn(bs, num_queries, D, generator=g),
        value=torch.randn(bs, h * w, D, generator=g),
        key_padding_mask=None,
        self_attn_mask=None,
        reference_points=torch.rand(bs, num_queries, 4, generator=g) * 0.5 + 0.25,
        spatial_shapes=torch.tensor([[h, w]]),
        level_start_index=torch.tensor([0]),
        valid_ratios=torch.ones(bs, 1, 2),
        memory_text=torch.randn(bs, length, D, generator=g),
        text_attention_mask=torch.zeros(bs, length, dtype=torch.bool))


def _branches(num_layers):
    reg = torch.nn.ModuleList([torch.nn.Linear(D, 4) for _ in range(num_layers)])
    cls = torch.nn.ModuleList([ContrastiveEmbed(max_text_len=16) for _ in range(num_layers)])
    return reg, cls


def _first_layer(dec, inp):
    """Layer 0 of ``dec`` run by hand on ``inp``: (raw output (B, Q, C), weights (B, Q, Q))."""
    ref = inp['reference_points']
    ref_in = ref[:, :, None] * torch.cat([inp['valid_ratios'], inp['valid_ratios']], -1)[:, None]
    query_pos = dec.ref_point_head(coordinate_to_encoding(ref_in[:, :, 0, :]))
    return dec.layers[0](
        inp['query'],
        query_pos=query_pos,
        value=inp['value'],
        key_padding_mask=None,
        self_attn_mask=None,
        spatial_shapes=inp['spatial_shapes'],
        level_start_index=inp['level_start_index'],
        valid_ratios=inp['valid_ratios'],
        reference_points=ref_in,
        memory_text=inp['memory_text'],
        text_attention_mask=inp['text_attention_mask'],
        need_attn_weights=True)


def test_num_kept_queries_rounds_up():
    assert [num_kept_queries(q, 0.5) for q in (900, 450, 225, 113, 57, 29)] == \
        [450, 225, 113, 57, 29, 15]
    assert num_kept_queries(100, 0.15) == 85 and num_kept_queries(1, 0.5) == 1


def test_confidence_matches_explicit_formula():
    g = torch.Generator().manual_seed(1)
    attn = torch.rand(2, 5, 5, generator=g)
    attn = attn / attn.sum(-1, keepdim=True)
    logits = torch.randn(2, 5, generator=g)
    got = pruning_confidence(attn, logits)
    for b in range(2):
        received = [sum(float(attn[b, i, j]) for i in range(5) if i != j) for j in range(5)]
        e_rec = [math.exp(r) for r in received]
        e_log = [math.exp(float(x)) for x in logits[b]]
        want = [0.5 * (r / sum(e_rec) + c / sum(e_log)) for r, c in zip(e_rec, e_log)]
        torch.testing.assert_close(got[b], torch.tensor(want), rtol=1e-5, atol=1e-6)


@torch.no_grad()
def test_drop_half_keeps_900_450_225_113_57_29_15():
    torch.manual_seed(0)
    dec = _decoder()
    reg, cls = _branches(6)
    out = dec(**_inputs(), reg_branches=reg, cls_branches=cls)
    assert [h.shape[1] for h in out['hidden_states']] == [450, 225, 113, 57, 29, 15]
    assert dec.query_counts(900) == [900, 450, 225, 113, 57, 29, 15]
    for hs, ref, keep, ids in zip(out['hidden_states'], out['references'], out['keep_indices'],
                                  out['query_indices']):
        assert ref.shape == hs.shape[:2] + (4, )
        assert keep.shape == ids.shape == hs.shape[:2]
        assert len(set(ids[0].tolist())) == ids.shape[1]  # no query kept twice
    # query_indices compose the per-layer keep_indices
    composed = torch.arange(900)[None]
    for keep, ids in zip(out['keep_indices'], out['query_indices']):
        composed = torch.gather(composed, 1, keep)
        assert torch.equal(composed, ids)


@torch.no_grad()
def test_first_layer_keeps_the_highest_confidence_queries():
    torch.manual_seed(0)
    dec = _decoder(num_layers=2)
    # a final norm far from the identity: the class term must come from the raw layer
    # output (the official decoder), not from the normalised one
    dec.norm.weight.uniform_(-2.0, 2.0)
    dec.norm.bias.uniform_(-1.0, 1.0)
    reg, cls = _branches(2)
    inp = _inputs(bs=2, num_queries=40)
    out = dec(**inp, reg_branches=reg, cls_branches=cls)

    # direct computation of layer 0's confidence
    q, weights = _first_layer(dec, inp)
    logits = cls[0](q, inp['memory_text'], ~inp['text_attention_mask']).max(-1).values
    conf = pruning_confidence(weights, logits)
    normed = cls[0](dec.norm(q), inp['memory_text'], ~inp['text_attention_mask']).max(-1).values
    assert set(pruning_confidence(weights, normed)[0].topk(20).indices.tolist()) != \
        set(conf[0].topk(20).indices.tolist())  # the two rules keep different queries here
    kept = out['keep_indices'][0]
    assert kept.shape == (2, 20)
    for b in range(2):
        assert set(kept[b].tolist()) == set(conf[b].topk(20).indices.tolist())
        # every kept query is at least as confident as every dropped one
        dropped = sorted(set(range(40)) - set(kept[b].tolist()))
        assert conf[b, kept[b]].min() >= conf[b, dropped].max()
    torch.testing.assert_close(out['hidden_states'][0],
                               dec.norm(torch.gather(q, 1, kept[..., None].expand(-1, -1, D))))


@torch.no_grad()
def test_drop_zero_keeps_every_query_and_random_mode_keeps_same_counts():
    torch.manual_seed(0)
    reg, cls = _branches(3)
    plain = _decoder(num_layers=3, drop_rate=0.0)
    out = plain(**_inputs(num_queries=30), reg_branches=reg, cls_branches=cls)
    assert [h.shape[1] for h in out['hidden_states']] == [30, 30, 30]
    assert sorted(out['query_indices'][-1][0].tolist()) == list(range(30))

    rand = _decoder(num_layers=3, prune_mode='random')
    rand.load_state_dict(plain.state_dict())
    out = rand(**_inputs(num_queries=30), reg_branches=reg, cls_branches=None)
    assert [h.shape[1] for h in out['hidden_states']] == [15, 8, 4]


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError, match='drop_rate'):
        _decoder(drop_rate=1.0)
    with pytest.raises(ValueError, match='prune_mode'):
        _decoder(prune_mode='greedy')


@torch.no_grad()
def test_ranks_by_the_class_rule_it_is_given():
    """With ``class_logits`` (the head's own rule, e.g. the mean over tokens), the decoder
    prunes by those logits, not by the max over ``cls_branches``'s tokens."""
    torch.manual_seed(0)
    dec = _decoder(num_layers=1)
    reg, _ = _branches(1)
    inp = _inputs(bs=2, num_queries=40)
    calls = []

    def favour_odd_queries(lid, hidden, text, mask):
        calls.append((lid, tuple(hidden.shape), bool(mask.all())))
        return 50.0 * (torch.arange(hidden.shape[1]) % 2 == 1).float().expand(2, -1)

    out = dec(**inp, reg_branches=reg, cls_branches=None, class_logits=favour_odd_queries)
    assert calls == [(0, (2, 40, D), True)]  # text mask passed as True = valid token
    for b in range(2):
        assert sorted(out['keep_indices'][0][b].tolist()) == list(range(1, 40, 2))


@torch.no_grad()
def test_drop_zero_keeps_every_query_ordered_by_confidence():
    torch.manual_seed(0)
    dec = _decoder(num_layers=2, drop_rate=0.0)
    reg, cls = _branches(2)
    inp = _inputs(bs=2, num_queries=30)
    out = dec(**inp, reg_branches=reg, cls_branches=cls)
    q, weights = _first_layer(dec, inp)
    logits = cls[0](q, inp['memory_text'], ~inp['text_attention_mask']).max(-1).values
    conf = pruning_confidence(weights, logits)
    # the official decoder: topk of all queries, i.e. every query, most confident first
    assert torch.equal(out['keep_indices'][0], conf.argsort(-1, descending=True))
    for ids in out['query_indices']:
        assert sorted(ids[0].tolist()) == list(range(30))
    # without a class rule there is nothing to rank by: the order is kept
    plain = dec(**inp, reg_branches=reg, cls_branches=None)
    assert torch.equal(plain['keep_indices'][0], torch.arange(30).expand(2, -1))

"""Memory-augmented tracker and cross-modal temporal decoder."""
import torch
import torch.nn.functional as F

from mmrvos.models.layers import (CrossModalTemporalDecoder, MemoryTracker,
                                  TemporalEnhancer)


def _permuted_clip(t=5, q=12, c=32, noise=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(q, c, generator=g)
    frames, perms = [base], [torch.arange(q)]
    for _ in range(1, t):
        perm = torch.randperm(q, generator=g)
        frames.append(base[perm] + noise * torch.randn(q, c, generator=g))
        perms.append(perm)
    return torch.stack(frames)[None], torch.stack(perms)


def _text(t, c=32, length=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(1, t, length, c, generator=g)
    return text, torch.ones(1, t, length, dtype=torch.bool), text[:, :, 0]


def test_tracker_recovers_known_permutation():
    objects, perms = _permuted_clip()
    text, mask, sent = _text(objects.shape[1])
    for gate in ('code', 'paper'):
        track = MemoryTracker(alpha=0.1, gate=gate)(objects, text, mask, sent)
        assert track.shape == (1, 5, 12)
        for t in range(5):
            # frame t's object track[t, k] is the frame-0 object k
            assert torch.equal(perms[t][track[0, t]], torch.arange(12))


def test_tracker_memory_update_follows_momentum_formula():
    tracker = MemoryTracker(alpha=0.1, gate='code')
    objs = torch.randn(1, 6, 8)
    text = torch.randn(1, 3, 8)
    conf = tracker.confidence(objs, text, None, text[:, 0])
    sim = torch.einsum('bqc,blc->bql', objs, text).max(-1).values
    want = (sim - sim.min()) / (sim.max() - sim.min())
    torch.testing.assert_close(conf[..., 0], want)
    paper = MemoryTracker(gate='paper').confidence(objs, text, None, text[:, 0])
    torch.testing.assert_close(paper[..., 0], F.cosine_similarity(objs, text[:, :1], dim=-1))


def test_temporal_decoder_is_equivariant_to_track_permutation():
    torch.manual_seed(0)
    dec = CrossModalTemporalDecoder(embed_dims=32, num_heads=4, num_layers=2).eval()
    objects = torch.randn(2, 4, 7, 32)
    sentence = torch.randn(2, 4, 32)
    perm = torch.randperm(7)
    with torch.no_grad():
        out = dec(objects, sentence)
        out_perm = dec(objects[:, :, perm], sentence)
    assert out.shape == objects.shape
    torch.testing.assert_close(out_perm, out[:, :, perm], rtol=1e-5, atol=1e-5)
    # it does mix information over time: changing one frame changes the others' outputs
    changed = objects.clone()
    changed[:, 0] += 1.0
    with torch.no_grad():
        out2 = dec(changed, sentence)
    assert not torch.allclose(out2[:, 1:], out[:, 1:])


def test_enhancer_switches():
    objects, _ = _permuted_clip(t=3, q=5, c=32)
    text, mask, sent = _text(3)
    off = TemporalEnhancer(tracker=None, temporal_decoder=None)
    assert torch.equal(off.track(objects, text, mask, sent),
                       torch.arange(5).expand(1, 3, 5))
    assert torch.equal(off.refine(objects, sent), objects)

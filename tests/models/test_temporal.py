"""Memory-augmented tracker and cross-modal temporal decoder."""
import pytest
import torch
import torch.nn.functional as F

from mmrvos.models.layers import CrossModalTemporalDecoder, MemoryTracker, TemporalEnhancer
from mmrvos.models.layers.temporal import track_velocities


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
    assert torch.equal(off.track(objects, text, mask, sent), torch.arange(5).expand(1, 3, 5))
    assert torch.equal(off.refine(objects, sent), objects)


def test_track_velocities_match_hand_computed_differences():
    # one track moving +0.1 in cx per frame index, sampled at frames 0, 1, 3 (gap of 2)
    boxes = torch.zeros(1, 3, 1, 4)
    boxes[0, :, 0, 0] = torch.tensor([0.1, 0.2, 0.4])
    times = torch.tensor([[0., 1., 3.]])
    vel = track_velocities(boxes, times)
    assert vel.shape == (1, 3, 1, 8)
    torch.testing.assert_close(vel[0, :, 0, 0], torch.tensor([0.1, 0.1, 0.1]))  # backward
    torch.testing.assert_close(vel[0, :, 0, 4], torch.tensor([0.1, 0.1, 0.1]))  # forward
    assert vel[..., [1, 2, 3, 5, 6, 7]].abs().max() == 0
    # a reversed clip (decreasing times) gives the same velocity; a repeated frame gives 0
    rev = track_velocities(boxes.flip(1), times.flip(1))
    torch.testing.assert_close(rev[0, :, 0, 0], torch.tensor([0.1, 0.1, 0.1]))
    rep = track_velocities(boxes[:, [0, 0, 1]], torch.tensor([[0., 0., 1.]]))
    torch.testing.assert_close(rep[0, :, 0, 0], torch.tensor([0.0, 0.0, 0.1]))
    assert track_velocities(boxes[:, :1], times[:, :1]).abs().max() == 0


def _lookalike_clip(t=6):
    """Two objects with identical embeddings: A moves right along y=0.3, B moves down along
    x=0.7; each frame lists them in a random order."""
    g = torch.Generator().manual_seed(3)
    emb = torch.randn(32, generator=g)
    objects, boxes, orders = [], [], []
    for i in range(t):
        a = torch.tensor([0.2 + 0.02 * i, 0.3, 0.1, 0.1])
        b = torch.tensor([0.7, 0.2 + 0.02 * i, 0.1, 0.1])
        order = torch.randperm(2, generator=g) if i else torch.arange(2)
        pair = torch.stack([a, b])[order]
        boxes.append(pair)
        objects.append(emb.expand(2, 32) + 1e-3 * torch.randn(2, 32, generator=g))
        orders.append(order)
    return torch.stack(objects)[None], torch.stack(boxes)[None], torch.stack(orders)


def test_tracker_position_term_keeps_lookalikes_apart():
    objects, boxes, orders = _lookalike_clip()
    text, mask, sent = _text(objects.shape[1])
    track = MemoryTracker(box_weight=5.0)(objects, text, mask, sent, boxes)
    for t in range(objects.shape[1]):
        # track k holds the frame-0 object k on every frame
        assert torch.equal(orders[t][track[0, t]], torch.arange(2))
    with pytest.raises(ValueError, match='needs the boxes'):
        MemoryTracker(box_weight=5.0)(objects, text, mask, sent)


def test_motion_embedding_starts_as_official_decoder_and_sees_direction():
    torch.manual_seed(0)
    official = CrossModalTemporalDecoder(embed_dims=32, num_heads=4, num_layers=1).eval()
    motion = CrossModalTemporalDecoder(
        embed_dims=32, num_heads=4, num_layers=1, motion_embed=True).eval()
    motion.init_weights()
    missing = motion.load_state_dict(official.state_dict(), strict=False).missing_keys
    assert all(k.startswith('motion_mlp.') for k in missing) and missing
    t = 6
    objects = torch.randn(1, 1, 1, 32).expand(1, t, 2, 32)  # two identical tracks
    path = torch.stack([torch.tensor([0.2 + 0.02 * i, 0.3, 0.1, 0.1]) for i in range(t)])
    boxes = torch.stack([path, path.flip(0)], 1)[None]  # track 0 moves right, track 1 left
    sentence = torch.randn(1, t, 32)
    with torch.no_grad():
        torch.testing.assert_close(motion(objects, sentence, boxes), official(objects, sentence))
        # the official decoder cannot tell the two identical tracks apart
        out = official(objects, sentence)
        torch.testing.assert_close(out[:, :, 0], out[:, :, 1])
        # once the motion MLP is trained (here: random last layer), opposite motions differ
        torch.nn.init.normal_(motion.motion_mlp.layers[-1].weight)
        out = motion(objects, sentence, boxes)
    assert (out[:, :, 0] - out[:, :, 1]).abs().max() > 0.1
    with pytest.raises(ValueError, match='boxes'):
        motion(objects, sentence)


def test_zero_init_gate_starts_as_identity_and_learns():
    torch.manual_seed(0)
    dec = CrossModalTemporalDecoder(
        embed_dims=32, num_heads=4, num_layers=1, motion_embed=True, zero_init_gate=True)
    dec.init_weights()
    objects = torch.randn(2, 4, 5, 32)
    sentence = torch.randn(2, 4, 32)
    boxes = torch.rand(2, 4, 5, 4)
    out = dec(objects, sentence, boxes)
    assert torch.equal(out, objects)
    out.pow(2).sum().backward()
    assert dec.gate.grad is not None and dec.gate.grad.abs() > 0


def test_inference_over_a_few_tracks_at_a_time_equals_all_at_once():
    torch.manual_seed(0)
    dec = CrossModalTemporalDecoder(
        embed_dims=32, num_heads=4, num_layers=2, tracks_per_pass=3).eval()
    objects = torch.randn(2, 5, 7, 32)  # N=2 clips, T=5, Q=7 tracks: 14 rows in 5 passes
    sentence = torch.randn(2, 5, 32)
    passes = []
    hook = dec.blocks[0].register_forward_pre_hook(lambda m, a: passes.append(a[0].shape[0]))
    with torch.no_grad():
        grouped = dec(objects, sentence)
    assert passes == [3, 3, 3, 3, 2]
    dec.tracks_per_pass = None
    passes.clear()
    with torch.no_grad():
        whole = dec(objects, sentence)
    assert passes == [14]
    hook.remove()
    torch.testing.assert_close(grouped, whole, rtol=1e-5, atol=1e-6)
    # with gradients (training) the tracks go through at once
    dec.tracks_per_pass = 3
    dec(objects.requires_grad_(), sentence).sum().backward()
    with pytest.raises(ValueError, match='tracks_per_pass'):
        CrossModalTemporalDecoder(embed_dims=32, num_heads=4, tracks_per_pass=0)


def test_tracker_runs_under_bf16_autocast():
    objects, perms = _permuted_clip()
    text, mask, sent = _text(objects.shape[1])
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        track = MemoryTracker(alpha=0.1)(objects, text, mask, sent)
    for t in range(5):  # the Hungarian costs are taken in fp32 (numpy has no bfloat16)
        assert torch.equal(perms[t][track[0, t]], torch.arange(12))

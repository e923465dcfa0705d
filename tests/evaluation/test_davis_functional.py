"""Hand-computed and brute-force checks of the DAVIS J / F functions.

Pure numpy: these tests need neither mmdet nor the fixture.
"""
import numpy as np
import pytest

from mmrvos.evaluation.functional.davis import (boundary_f, boundary_map, boundary_radius, disk,
                                                region_jaccard)


def test_disk_matches_gauss_circle_counts():
    # number of integer points with x^2 + y^2 <= r^2 (Gauss circle problem)
    counts = {0: 1, 1: 5, 2: 13, 3: 29, 8: 197, 10: 317}
    for r, n in counts.items():
        d = disk(r)
        assert d.shape == (2 * r + 1, 2 * r + 1)
        assert d.dtype == np.uint8
        assert int(d.sum()) == n
    np.testing.assert_array_equal(disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])


def test_boundary_radius():
    # DAVIS 480p: ceil(0.008 * sqrt(480^2 + 854^2)) = ceil(7.837) = 8
    assert boundary_radius((480, 854)) == 8
    # 1080p: ceil(0.008 * 2202.9) = ceil(17.62) = 18
    assert boundary_radius((1080, 1920)) == 18
    assert boundary_radius((480, 854), bound_th=3) == 3


def test_boundary_map_square_hand_computed():
    seg = np.zeros((4, 4), bool)
    seg[1:3, 1:3] = True
    expected = np.array([[1, 1, 1, 0], [1, 0, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(boundary_map(seg), expected)


def test_boundary_map_last_row_and_column_rules():
    # only the bottom-right pixel is set: the last row compares with the
    # east neighbour, the last column with the south one, and the corner
    # itself is never a boundary
    seg = np.zeros((3, 3), bool)
    seg[2, 2] = True
    expected = np.array([[0, 0, 0], [0, 1, 1], [0, 1, 0]], bool)
    np.testing.assert_array_equal(boundary_map(seg), expected)
    assert not boundary_map(np.ones((3, 5), bool)).any()
    # batched input gives the per-frame maps
    stack = np.stack([seg, np.ones((3, 3), bool)])
    np.testing.assert_array_equal(boundary_map(stack)[0], expected)


def test_region_jaccard_hand_computed():
    gt = np.zeros((2, 5, 5), bool)
    pred = np.zeros((2, 5, 5), bool)
    gt[0, 1:3, 1:3] = True  # 4 px
    pred[0, 1:3, 1:4] = True  # 6 px, 4 shared
    # frame 1: both empty -> 1
    np.testing.assert_allclose(region_jaccard(gt, pred), [4 / 6, 1.0])
    assert region_jaccard(gt[0], np.zeros((5, 5), bool)) == 0.0
    assert region_jaccard(np.zeros((5, 5), bool), pred[0]) == 0.0
    void = np.zeros((5, 5), bool)
    void[:, 3] = True  # removes the two pred-only pixels
    assert region_jaccard(gt[0], pred[0], void) == 1.0


def test_boundary_f_degenerate_cases():
    empty = np.zeros((20, 20), bool)
    sq = empty.copy()
    sq[5:15, 5:15] = True
    assert boundary_f(empty, empty) == 1.0
    assert boundary_f(sq, empty) == 0.0
    assert boundary_f(empty, sq) == 0.0
    assert boundary_f(sq, sq) == 1.0


def test_boundary_f_tolerance_is_a_closed_disk():
    gt = np.zeros((60, 60), bool)
    gt[20:40, 20:40] = True
    for shift, perfect in ((2, True), (3, False)):
        pred = np.roll(gt, shift, axis=1)
        f = boundary_f(gt, pred, bound_th=2)
        assert (f == 1.0) == perfect, (shift, f)
    # diagonal shift (2, 2) is at distance sqrt(8) > 2: not perfect;
    # (1, 1) at sqrt(2) <= 2: perfect
    assert boundary_f(gt, np.roll(gt, (1, 1), axis=(0, 1)), bound_th=2) == 1.0
    assert boundary_f(gt, np.roll(gt, (2, 2), axis=(0, 1)), bound_th=2) < 1.0


def _brute_force_f(gt, pred, radius):
    """Literal definition: loops over boundary pixels, exact distances."""

    def bmap(seg):
        h, w = seg.shape
        b = np.zeros_like(seg)
        for y in range(h):
            for x in range(w):
                nb = []
                if x + 1 < w:
                    nb.append(seg[y, x + 1])
                if y + 1 < h and y != h - 1:
                    nb.append(seg[y + 1, x])
                if x + 1 < w and y + 1 < h:
                    nb.append(seg[y + 1, x + 1])
                if y == h - 1:  # last row: east only
                    nb = [seg[y, x + 1]] if x + 1 < w else []
                elif x == w - 1:  # last column: south only
                    nb = [seg[y + 1, x]]
                b[y, x] = any(v != seg[y, x] for v in nb)
        return b

    def matched(src, dst):
        ys, xs = np.nonzero(dst)
        n = 0
        for y, x in zip(*np.nonzero(src)):
            if len(ys) and ((ys - y)**2 + (xs - x)**2).min() <= radius**2:
                n += 1
        return n

    bf, bg = bmap(pred), bmap(gt)
    nf, ng = bf.sum(), bg.sum()
    if nf == 0 and ng == 0:
        return 1.0
    if nf == 0 or ng == 0:
        return 0.0
    p, r = matched(bf, bg) / nf, matched(bg, bf) / ng
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def test_boundary_f_equals_brute_force_on_random_blobs():
    rng = np.random.default_rng(0)
    gts, preds = [], []
    for _ in range(6):
        g = rng.random((14, 17)) < 0.5
        p = g ^ (rng.random((14, 17)) < 0.15)
        gts.append(g)
        preds.append(p)
    gts, preds = np.stack(gts), np.stack(preds)
    for radius in (1, 2, 3):
        f = boundary_f(gts, preds, bound_th=radius)
        ref = [_brute_force_f(g, p, radius) for g, p in zip(gts, preds)]
        np.testing.assert_allclose(f, ref, rtol=0, atol=1e-12)


def test_batched_equals_per_frame_across_chunks():
    # 70 frames crosses the 64-frame internal chunk
    rng = np.random.default_rng(1)
    gt = rng.random((70, 24, 30)) < 0.4
    pred = gt ^ (rng.random((70, 24, 30)) < 0.1)
    pred[3] = False
    gt[5] = False
    f = boundary_f(gt, pred)
    j = region_jaccard(gt, pred)
    assert f.shape == j.shape == (70, )
    for t in (0, 3, 5, 63, 64, 69):
        assert f[t] == boundary_f(gt[t], pred[t])
        assert j[t] == region_jaccard(gt[t], pred[t])


def test_shape_errors():
    with pytest.raises(ValueError, match='shapes differ'):
        region_jaccard(np.zeros((4, 5), bool), np.zeros((4, 6), bool))
    with pytest.raises(ValueError, match='shapes differ'):
        boundary_f(np.zeros((2, 4, 5), bool), np.zeros((2, 4, 6), bool))
    with pytest.raises(ValueError, match=r'\(T, H, W\)'):
        region_jaccard(np.zeros(5, bool), np.zeros(5, bool))

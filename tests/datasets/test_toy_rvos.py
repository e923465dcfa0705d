"""Tests of the synthetic toy RVOS benchmark generator."""
import hashlib
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mmrvos.datasets.synthetic.toy_generator import (COLOURS, CROP_MARGIN, DIRECTIONS, SHAPES,
                                                     generate_video, make_toy_rvos, shape_mask)


def _tree_digest(root):
    """{relative path: sha256} of every file under root."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_byte_for_byte_deterministic(tmp_path):
    kwargs = dict(num_train=3, num_valid=2, num_frames=8)
    make_toy_rvos(str(tmp_path / 'a'), seed=7, **kwargs)
    make_toy_rvos(str(tmp_path / 'b'), seed=7, **kwargs)
    make_toy_rvos(str(tmp_path / 'c'), seed=8, **kwargs)
    a, b, c = (_tree_digest(str(tmp_path / n)) for n in 'abc')
    assert len(a) == 3 * 8 * 2 + 2 * 8 * 2 + 4  # jpg+png per frame, 2 meta_expressions, 2 meta
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_layout_and_formats(tmp_path):
    root = str(tmp_path)
    stats = make_toy_rvos(root, seed=0, num_train=4, num_valid=2, num_frames=8, size=(144, 128))
    assert stats['train_videos'] == 4 and stats['valid_videos'] == 2
    for split in ('train', 'valid'):
        with open(osp.join(root, 'meta_expressions', split, 'meta_expressions.json')) as f:
            videos = json.load(f)['videos']
        with open(osp.join(root, split, 'meta.json')) as f:
            meta = json.load(f)['videos']
        assert set(videos) == set(meta)
        for vid, vdata in videos.items():
            assert 2 <= len(meta[vid]['objects']) <= 4
            assert vdata['frames'] == [f'{t:05d}' for t in range(8)]
            for exp in vdata['expressions'].values():
                assert exp['exp_type'] in ('static', 'spatial', 'motion')
                assert exp['obj_id'] in meta[vid]['objects']
                assert exp['exp'].startswith('the ')
            for name in vdata['frames']:
                img = Image.open(osp.join(root, split, 'JPEGImages', vid, name + '.jpg'))
                png = Image.open(osp.join(root, split, 'Annotations', vid, name + '.png'))
                assert img.format == 'JPEG' and img.size == (144, 128)
                assert png.mode == 'P' and png.size == (144, 128)
                ids = set(np.unique(np.asarray(png)).tolist()) - {0}
                assert ids <= {int(k) for k in meta[vid]['objects']}


def _crop(arr, box):
    x1, y1, x2, y2 = box
    m = CROP_MARGIN
    return arr[y1 - m:y2 + m, x1 - m:x2 + m]


def _motion_pairs(num_videos=40):
    pairs = []
    for index in range(num_videos):
        video = generate_video(3, 'train', index)
        objs = {o.obj_id: o for o in video.objects}
        for exp in video.expressions:
            if exp['exp_type'] == 'motion':
                target = objs[int(exp['obj_id'])]
                pairs.append((video, exp, target, objs[target.distractor_of]))
    return pairs


def test_motion_expressions_unsolvable_from_a_single_frame():
    pairs = _motion_pairs()
    assert len(pairs) >= 40
    for video, exp, target, distractor in pairs:
        assert (target.colour, target.shape, target.size) == \
            (distractor.colour, distractor.shape, distractor.size)
        assert target.motion != distractor.motion
        assert exp['exp'].startswith(f'the {target.colour} {target.shape} ')
        for t in range(video.frames.shape[0]):
            bt, bd = target.box(t), distractor.box(t)
            crop_t, crop_d = _crop(video.frames[t], bt), _crop(video.frames[t], bd)
            # fully inside the frame, margin included, and pixel-identical
            assert crop_t.shape == (target.size + 2 * CROP_MARGIN, ) * 2 + (3, )
            assert np.array_equal(crop_t, crop_d), (video.video_id, exp, t)
            # each crop holds only its own object and background
            ids_t = set(np.unique(_crop(video.ids[t], bt)).tolist())
            ids_d = set(np.unique(_crop(video.ids[t], bd)).tolist())
            assert ids_t == {0, target.obj_id} and ids_d == {0, distractor.obj_id}


def test_motion_pair_identical_on_written_files(tmp_path):
    """The written PNG crops are identical too; JPEG crops differ only by compression noise."""
    root = str(tmp_path)
    make_toy_rvos(root, seed=3, num_train=6, num_valid=0)
    with open(osp.join(root, 'train', 'meta.json')) as f:
        meta = json.load(f)['videos']
    checked = 0
    for vid, vmeta in meta.items():
        index = int(vid.split('_')[1])
        video = generate_video(3, 'train', index)
        for o in video.objects:
            if o.distractor_of is None or o.obj_id > o.distractor_of:
                continue
            d = next(p for p in video.objects if p.obj_id == o.distractor_of)
            assert vmeta['objects'][str(o.obj_id)]['distractor'] == str(d.obj_id)
            for t in range(video.frames.shape[0]):
                png = np.asarray(
                    Image.open(osp.join(root, 'train', 'Annotations', vid, f'{t:05d}.png')))
                jpg = np.asarray(
                    Image.open(osp.join(root, 'train', 'JPEGImages', vid,
                                        f'{t:05d}.jpg'))).astype(np.float32)
                assert np.array_equal(
                    _crop(png, o.box(t)) == o.obj_id,
                    _crop(png, d.box(t)) == d.obj_id)
                diff = np.abs(_crop(jpg, o.box(t)) - _crop(jpg, d.box(t))).mean()
                assert diff < 4.0  # quality-95 ringing at different 8x8-block phases
                checked += 1
    assert checked > 0


def test_motion_and_spatial_words_match_geometry():
    for index in range(30):
        video = generate_video(5, 'valid', index)
        objs = {o.obj_id: o for o in video.objects}
        for exp in video.expressions:
            target = objs[int(exp['obj_id'])]
            if exp['exp_type'] == 'motion':
                word = 'still' if exp['exp'].endswith('staying still') else exp['exp'].split()[-1]
                step = target.xy[1:] - target.xy[:-1]
                dx, dy = DIRECTIONS[word]
                assert np.all(np.sign(step) == np.array([dx, dy])), exp
            elif exp['exp_type'] == 'static':
                same = [
                    o for o in video.objects if (o.colour, o.shape) == (target.colour, target.shape)
                ]
                assert same == [target]
            else:
                other = next(o for o in video.objects
                             if o.shape == target.shape and o is not target)
                for t in range(video.frames.shape[0]):
                    yt, xt = np.nonzero(video.ids[t] == target.obj_id)
                    yo, xo = np.nonzero(video.ids[t] == other.obj_id)
                    if not len(xt) or not len(xo):
                        continue
                    if exp['exp'].endswith('left'):
                        assert xt.mean() < xo.mean()
                    elif exp['exp'].endswith('right'):
                        assert xt.mean() > xo.mean()
                    elif exp['exp'].endswith('top'):
                        assert yt.mean() < yo.mean()
                    else:
                        assert yt.mean() > yo.mean()


def test_objects_enter_leave_and_stop():
    motions = set()
    absent_frames = 0
    for index in range(60):
        video = generate_video(0, 'train', index)
        motions |= {o.motion for o in video.objects}
        for o in video.objects:
            absent_frames += int(
                sum(not (video.ids[t] == o.obj_id).any() for t in range(video.ids.shape[0])))
    assert {'enter', 'leave', 'stop', 'start', 'still'} <= motions
    assert absent_frames > 0


def test_shape_masks_and_bad_arguments():
    for shape in SHAPES:
        m = shape_mask(shape, 20)
        assert m.shape == (20, 20) and 0.3 < m.mean() <= 1.0
    assert len(COLOURS) >= 3
    with pytest.raises(ValueError, match='unknown shape'):
        shape_mask('hexagon', 10)
    with pytest.raises(ValueError, match='split'):
        generate_video(0, 'test', 0)

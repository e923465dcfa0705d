"""RVOSMetric / A2DMetric through mmengine's Evaluator, as the test loop uses them."""
import json
import warnings
import zipfile
from os import path as osp

import numpy as np
import pytest
import torch
from eval_fixture_reference import FIXTURE, OFFICIAL
from mmdet.registry import METRICS
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData
from PIL import Image

import mmrvos  # noqa: F401  (registration)
from mmrvos.evaluation import A2DMetric, RVOSMetric
from mmrvos.evaluation.functional import region_jaccard

needs_fixture = pytest.mark.skipif(
    not osp.isdir(FIXTURE), reason=f'davis-judo fixture not found at {FIXTURE}')

# expression -> object id (each is annotated on one frame only)
OBJ = {'0': 1, '1': 2, '2': 3, '3': 4}
ANNOTATED = {'0': '00000', '1': '00005', '2': '00008', '3': '00013'}


def _frame(video, exp, frame, masks, length, scores=None, gt=None, **meta):
    s = DetDataSample(
        metainfo=dict(
            video_id=video,
            exp_id=exp,
            frame_id=frame,
            ori_shape=masks.shape[1:],
            ori_video_length=length,
            **meta))
    inst = InstanceData()
    inst.masks = torch.as_tensor(masks)
    inst.scores = torch.as_tensor(np.ones(len(masks)) if scores is None else scores).float()
    inst.bboxes = torch.zeros(len(masks), 4)
    s.pred_instances = inst
    if gt is not None:
        g = InstanceData()
        g.masks = torch.as_tensor(gt)
        s.gt_instances = g
    return s


def _rvos_track(exp, frames=range(16), **meta):
    samples = []
    for t in frames:
        png = np.array(Image.open(osp.join(FIXTURE, 'predictions', 'rvos', 'judo', f'{t:05d}.png')))
        samples.append(_frame('judo', exp, f'{t:05d}', (png == OBJ[exp])[None], 16, **meta))
    track = TrackDataSample()
    track.video_data_samples = samples
    return track


def _run(metric, tracks):
    ev = Evaluator(metric)
    ev.process(data_samples=tracks, data_batch=None)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the 853-px annotation warning
        return ev.evaluate(len(tracks))


def _official(exp):
    o = OBJ[exp]
    return OFFICIAL[f'rvos/{ANNOTATED[exp]}/obj{o}/pred{o}']


def test_registered():
    assert METRICS.get('RVOSMetric') is RVOSMetric
    assert METRICS.get('A2DMetric') is A2DMetric


@needs_fixture
def test_rvos_metric_matches_official_on_fixture(tmp_path):
    dump = tmp_path / 'per_exp.json'
    metric = RVOSMetric(data_root=FIXTURE, dump_file=str(dump))
    res = _run(metric, [_rvos_track(e) for e in OBJ])
    refs = [_official(e) for e in OBJ]
    assert res['rvos/J'] == pytest.approx(np.mean([j for j, _ in refs]), abs=1e-9)
    assert res['rvos/F'] == pytest.approx(np.mean([f for _, f in refs]), abs=1e-9)
    data = json.loads(dump.read_text())
    by_exp = {e['exp_id']: e for e in data['expressions']}
    for e in OBJ:  # only the annotated frame counts
        assert list(by_exp[e]['frames']) == [ANNOTATED[e]]
        assert by_exp[e]['J'] == pytest.approx(_official(e)[0], abs=1e-6)


@needs_fixture
def test_frame_by_frame_equals_whole_video():
    metric = RVOSMetric(data_root=FIXTURE)
    # ori_video_length 16 with one frame per sample: process_image path
    tracks = []
    for t in range(16):
        tr = _rvos_track('1', frames=[t])
        tracks.append(tr)
    res = _run(metric, tracks)
    j, f = _official('1')
    assert res['rvos/J'] == pytest.approx(j, abs=1e-6)
    assert res['rvos/F'] == pytest.approx(f, abs=1e-6)


@needs_fixture
def test_annotators_and_types_from_metainfo():
    tracks = [
        _rvos_track(e, annotator=int(e), exp_type='motion' if e in '01' else 'static') for e in OBJ
    ]
    res = _run(RVOSMetric(data_root=FIXTURE, use_annotators=True), tracks)
    assert res['rvos/J&F_annotator2'] == pytest.approx(sum(_official('2')) / 2, abs=1e-6)
    motion = np.mean([sum(_official(e)) / 2 for e in '01'])
    assert res['rvos/J&F_motion'] == pytest.approx(motion, abs=1e-6)


@needs_fixture
def test_bad_inputs_name_the_problem():
    metric = RVOSMetric(data_root=FIXTURE)
    track = _rvos_track('0', frames=[0])
    track.video_data_samples[0].set_metainfo(dict(video_id='nope'))
    with pytest.raises(KeyError, match='meta_expressions.json'):
        _run(metric, [track])
    track = _rvos_track('0', frames=[0])
    track.video_data_samples[0].set_metainfo(dict(ori_shape=(480, 850)))
    with pytest.raises(ValueError, match='judo/0/00000.*ori_shape'):
        _run(metric, [track])


@needs_fixture
def test_format_only_writes_pngs_and_zip(tmp_path):
    out, z = tmp_path / 'Annotations', tmp_path / 'submission.zip'
    metric = RVOSMetric(format_only=True, outfile_dir=str(out), zip_file=str(z))
    assert _run(metric, [_rvos_track('3', frames=[0, 1])]) == {}
    png = np.array(Image.open(out / 'judo' / '3' / '00001.png'))
    ref = np.array(Image.open(osp.join(FIXTURE, 'predictions', 'rvos', 'judo', '00001.png'))) == 4
    np.testing.assert_array_equal(png.astype(bool), ref)
    with zipfile.ZipFile(z) as zf:
        assert sorted(
            zf.namelist()) == ['Annotations/judo/3/00000.png', 'Annotations/judo/3/00001.png']
    with pytest.raises(FileExistsError, match='overwrite'):
        RVOSMetric(format_only=True, outfile_dir=str(out))


def _mevis_root(tmp_path):
    from pycocotools import mask as mask_utils

    def rle(m):
        r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        r['counts'] = r['counts'].decode()
        return r

    a = np.zeros((3, 8, 10), bool)
    b = np.zeros((3, 8, 10), bool)
    a[0, 1:4, 1:4] = a[2, 2:5, 2:5] = True
    b[0, 5:7, 6:9] = b[1, 5:7, 6:9] = True
    (tmp_path / 'mask_dict.json').write_text(
        json.dumps({
            '10': [rle(a[0]), None, rle(a[2])],
            '11': [rle(b[0]), rle(b[1]), None]
        }))
    (tmp_path / 'meta_expressions.json').write_text(
        json.dumps({
            'videos': {
                'v': {
                    'frames': ['00000', '00001', '00002'],
                    'expressions': {
                        '0': {
                            'exp': 'both',
                            'obj_id': [1, 2],
                            'anno_id': [10, 11]
                        }
                    }
                }
            }
        }))
    return a | b


def test_mevis_union_targets_and_null_frames(tmp_path):
    target = _mevis_root(tmp_path)
    pred = target.copy()
    pred[0] = False  # frame 0 missed: J = 0
    pred[1, 0, 0] = True  # 1 extra pixel on frame 1 (target has 6 px)
    samples = [_frame('v', '0', f'{t:05d}', pred[t][None], 3) for t in range(3)]
    track = TrackDataSample()
    track.video_data_samples = samples
    res = _run(RVOSMetric(data_root=str(tmp_path), mask_dict_file='mask_dict.json'), [track])
    # every frame counts (MeViS), targets are unions of both objects
    expected = region_jaccard(target, pred).mean()
    assert res['rvos/J'] == pytest.approx(expected)
    assert res['rvos/J'] == pytest.approx((0 + 6 / 7 + 1) / 3)


def test_a2d_metric_equals_functional_hand_set():
    g = np.zeros((40, 40), bool)
    g[5:15, 5:15] = True
    inner = np.zeros_like(g)
    inner[5:13, 5:13] = True
    far = np.zeros_like(g)
    far[25:35, 25:35] = True
    tracks = []
    for i, (pred, score) in enumerate([(g, 0.9), (inner, 0.8), (far, 0.7)]):
        # 2-frame clip, only the second frame annotated
        frames = [
            _frame(f'v{i}', '0', '00000', pred[None], 2),
            _frame(f'v{i}', '0', '00001', np.stack([pred, g]), 2, scores=[score, 0.01], gt=g[None]),
        ]
        tr = TrackDataSample()
        tr.video_data_samples = frames
        tracks.append(tr)
    res = _run(A2DMetric(), tracks)
    # all queries submitted: the 0.01-scored exact query adds hits ranked
    # last; top-1 metrics use the high-score query only
    assert res['a2d/P@0.5'] == pytest.approx(2 / 3)
    assert res['a2d/oIoU'] == pytest.approx(164 / 400)
    # hand-computed COCO AP with the 0.01 exact queries (one GT per image;
    # ties at 0.01 keep image order): IoU thr <= .6: PR points
    # (1/3,1) (2/3,1) FP FP FP (1,1/2) -> (67 + 34 / 2) / 101 = 84/101;
    # thr >= .65: (1/3,1) FP FP FP (2/3,2/5) (1,1/2) -> (34 + 67 / 2) / 101.
    # mAP = (3 * 84 + 7 * 67.5) / 1010 (> 439/1010 with top-1 queries only)
    assert res['a2d/mAP'] == pytest.approx((3 * 84 + 7 * 67.5) / 1010, abs=1e-12)
    assert res['a2d/AP50'] == pytest.approx(84 / 101, abs=1e-12)

"""Scoring a prediction folder against the real fixture: protocol and errors.

Expected per-expression numbers are the official per-frame values of
``eval_fixture_reference.OFFICIAL`` (each fixture expression has exactly one
annotated frame), so the protocol (sparse frames, padding of the 853-wide
``00005.png``, object-id layout) is checked against the official code too.
"""
import shutil
import warnings
from os import path as osp

import numpy as np
import pytest
from eval_fixture_reference import FIXTURE, OFFICIAL
from PIL import Image

from mmrvos.evaluation.functional.rvos import format_rvos_table, summarize_rvos
from mmrvos.evaluation.functional.rvos_files import evaluate_prediction_dir
from mmrvos.evaluation.functional.rvos_gt import RVOSGroundTruth

pytestmark = pytest.mark.skipif(
    not osp.isdir(FIXTURE), reason=f'davis-judo fixture not found at {FIXTURE}')

# expression -> (obj id, its only annotated frame)
EXPRESSIONS = {'0': (1, '00000'), '1': (2, '00005'), '2': (3, '00008'), '3': (4, '00013')}


def _gt():
    return RVOSGroundTruth(FIXTURE)


def test_sparse_annotated_frames():
    gt = _gt()
    for exp_id, (_, frame) in EXPRESSIONS.items():
        assert gt.annotated_frames('judo', exp_id) == [frame]
    # frame 00001 has no PNG, 00005 lacks object 1: both "not annotated"
    assert gt.target('judo', '0', '00001') is None
    assert gt.target('judo', '0', '00005') is None


@pytest.mark.parametrize('method', ['osvos', 'rvos'])
def test_object_layout_matches_official(method):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        records = evaluate_prediction_dir(
            _gt(),
            osp.join(FIXTURE, 'predictions', method),
            layout='object',
            img_dir=osp.join(FIXTURE, 'JPEGImages'))
    # the 853-pixel-wide annotation is padded, with a warning naming it
    assert any('00005.png' in str(x.message) and 'padded' in str(x.message) for x in w)
    assert [r['exp_id'] for r in records] == ['0', '1', '2', '3']
    refs = []
    for r in records:
        obj, frame = EXPRESSIONS[r['exp_id']]
        if method == 'osvos' and obj > 2:
            # OSVOS has ids 1, 2 only: an empty prediction of a non-empty
            # target scores J = F = 0 by definition
            j, f = 0.0, 0.0
        else:
            j, f = OFFICIAL[f'{method}/{frame}/obj{obj}/pred{obj}']
        refs.append((j, f))
        assert r['num_frames'] == 1 and list(r['frames']) == [frame]
        assert abs(r['J'] - j) <= 1e-6 and abs(r['F'] - f) <= 1e-6
    summary = summarize_rvos(records)
    assert abs(summary['J'] - np.mean([j for j, _ in refs])) <= 1e-9
    assert abs(summary['F'] - np.mean([f for _, f in refs])) <= 1e-9
    assert abs(summary['J&F'] - (summary['J'] + summary['F']) / 2) <= 1e-12
    table = format_rvos_table(summary)
    assert f'{100 * summary["J&F"]:.3f}' in table


def test_without_images_prediction_size_defines_the_frame():
    # no JPEGImages: the prediction size is used when it is within the
    # tolerance of the annotation size (854 vs 853) -> same numbers
    records = evaluate_prediction_dir(
        _gt(), osp.join(FIXTURE, 'predictions', 'rvos'), layout='object')
    j, f = OFFICIAL['rvos/00005/obj2/pred2']
    assert abs(records[1]['J'] - j) <= 1e-6
    assert abs(records[1]['F'] - f) <= 1e-6


def _copy_preds(tmp_path, method='rvos'):
    dst = tmp_path / 'preds'
    shutil.copytree(osp.join(FIXTURE, 'predictions', method), dst)
    return dst


def test_missing_frame_error_and_empty_policy(tmp_path):
    preds = _copy_preds(tmp_path)
    missing = preds / 'judo' / '00005.png'
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=str(missing)):
        evaluate_prediction_dir(_gt(), str(preds), layout='object')
    with pytest.warns(UserWarning, match='scored as empty'):
        records = evaluate_prediction_dir(_gt(), str(preds), layout='object', missing='empty')
    # non-empty target against an empty prediction: J = F = 0
    assert records[1]['J'] == 0.0 and records[1]['F'] == 0.0
    j, _ = OFFICIAL['rvos/00000/obj1/pred1']
    assert abs(records[0]['J'] - j) <= 1e-6  # other expressions unaffected


def test_wrong_prediction_size_names_the_file(tmp_path):
    preds = _copy_preds(tmp_path)
    bad = preds / 'judo' / '00008.png'
    arr = np.array(Image.open(bad))
    Image.fromarray(arr[:, :800]).save(bad)
    with pytest.raises(ValueError, match=f'{bad}.*prediction size'):
        evaluate_prediction_dir(_gt(), str(preds), layout='object')
    with pytest.raises(ValueError, match=f'{bad}.*frame size'):
        evaluate_prediction_dir(
            _gt(), str(preds), layout='object', img_dir=osp.join(FIXTURE, 'JPEGImages'))


def test_unknown_video_names_the_folder(tmp_path):
    preds = _copy_preds(tmp_path)
    (preds / 'not_a_video').mkdir()
    with pytest.raises(KeyError, match='not_a_video'):
        evaluate_prediction_dir(_gt(), str(preds), layout='object')
    with pytest.raises(KeyError, match='meta_expressions.json'):
        _gt().expression('not_a_video', '0')


def test_expression_layout_and_annotators(tmp_path):
    # write binary per-expression PNGs: expression e = union of rvos ids
    src = osp.join(FIXTURE, 'predictions', 'rvos', 'judo')
    for exp_id, (obj, frame) in EXPRESSIONS.items():
        d = tmp_path / 'judo' / exp_id
        d.mkdir(parents=True)
        ids = (1, 2) if exp_id == '0' else (obj, )
        m = np.isin(np.array(Image.open(osp.join(src, frame + '.png'))), ids)
        Image.fromarray(m.astype(np.uint8)).save(d / f'{frame}.png')
    records = evaluate_prediction_dir(_gt(), str(tmp_path), with_annotator=True)
    j, f = OFFICIAL['rvos/00000/obj1/pred1+2']
    assert abs(records[0]['J'] - j) <= 1e-6
    assert abs(records[0]['F'] - f) <= 1e-6
    # 4 expressions in file order -> annotators 0..3 (Ref-DAVIS order)
    assert [r['annotator'] for r in records] == [0, 1, 2, 3]
    s = summarize_rvos(records)
    assert set(s['per_annotator']) == {0, 1, 2, 3}
    # one expression per annotator: the mean over annotators is the mean
    assert abs(s['J'] - np.mean([r['J'] for r in records])) <= 1e-12

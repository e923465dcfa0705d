"""J and F on the real davis-judo fixture against the official DAVIS 2017 code.

Reference values and how they were produced: ``eval_fixture_reference.py``.
"""
from os import path as osp

import numpy as np
import pytest
from eval_fixture_reference import FIXTURE, OFFICIAL, OFFICIAL_SEQ
from PIL import Image

from mmrvos.evaluation.functional.davis import boundary_f, region_jaccard

pytestmark = pytest.mark.skipif(
    not osp.isdir(FIXTURE), reason=f'davis-judo fixture not found at {FIXTURE}')

FRAMES = {'00000': 1, '00005': 2, '00008': 3, '00013': 4}
TOL = 1e-6  # the acceptance bound; observed differences are 0.0


def _png(*parts):
    return np.array(Image.open(osp.join(FIXTURE, *parts)))


def _gt(frame, obj, shape):
    """Object mask, zero-padded to the prediction size (00005 is 853 wide)."""
    ann = _png('Annotations', 'judo', frame + '.png')
    gt = np.zeros(shape, bool)
    h, w = min(ann.shape[0], shape[0]), min(ann.shape[1], shape[1])
    gt[:h, :w] = ann[:h, :w] == obj
    return gt


@pytest.mark.parametrize(
    'key', sorted(k for k in OFFICIAL if '/' in k and k.split('/')[0] in ('osvos', 'rvos')))
def test_per_frame_matches_official(key):
    method, frame, obj, pred_ids = key.split('/')
    ids = [int(i) for i in pred_ids[len('pred'):].split('+')]
    pred = np.isin(_png('predictions', method, 'judo', frame + '.png'), ids)
    gt = _gt(frame, int(obj[len('obj'):]), pred.shape)
    j_ref, f_ref = OFFICIAL[key]
    assert abs(region_jaccard(gt, pred) - j_ref) <= TOL
    assert abs(boundary_f(gt, pred) - f_ref) <= TOL


def test_void_and_pixel_radius_match_official():
    gt = _png('Annotations', 'judo', '00000.png') == 1
    pred = np.isin(_png('predictions', 'osvos', 'judo', '00000.png'), (1, 2))
    void = np.zeros(gt.shape, bool)
    void[200:300, 300:500] = True
    j_ref, f_ref = OFFICIAL['void/osvos/00000/obj1/pred1+2']
    assert abs(region_jaccard(gt, pred, void) - j_ref) <= TOL
    assert abs(boundary_f(gt, pred, void=void) - f_ref) <= TOL
    _, f_ref = OFFICIAL['bound3/osvos/00000/obj1/pred1+2']
    assert abs(boundary_f(gt, pred, bound_th=3) - f_ref) <= TOL


@pytest.mark.parametrize('method,ids', [('osvos', (1, 2)), ('rvos', (1, ))])
def test_sequence_call_matches_official(method, ids):
    gt = _png('Annotations', 'judo', '00000.png') == 1
    gt16 = np.repeat(gt[None], 16, axis=0)
    pred16 = np.stack(
        [np.isin(_png('predictions', method, 'judo', f'{t:05d}.png'), ids) for t in range(16)])
    j_ref, f_ref = OFFICIAL_SEQ[method]
    np.testing.assert_allclose(region_jaccard(gt16, pred16), j_ref, rtol=0, atol=TOL)
    np.testing.assert_allclose(boundary_f(gt16, pred16), f_ref, rtol=0, atol=TOL)

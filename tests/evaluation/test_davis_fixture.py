"""J and F on the real davis-judo fixture against the official DAVIS 2017 code.

The expected values below were produced with the official evaluation code
(davisvideochallenge/davis2017-evaluation, commit
ac7c43fca936f9722837b7fbd337d284ba37004b, ``davis2017.metrics.db_eval_iou`` /
``db_eval_boundary``, scikit-image 0.26.0 for its ``disk``) by::

    PYTHONPATH=<davis2017-evaluation>:<site with scikit-image> \
        python tests/evaluation/make_official_reference.py \
        ../shared/fixtures/davis-judo

(the script documents the cases; its output is pasted here verbatim).
"""
from os import path as osp

import numpy as np
import pytest
from PIL import Image

from mmrvos.evaluation.functional.davis import boundary_f, region_jaccard

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FIXTURE = osp.join(REPO_ROOT, '..', 'shared', 'fixtures', 'davis-judo')

pytestmark = pytest.mark.skipif(
    not osp.isdir(FIXTURE),
    reason=f'davis-judo fixture not found at {FIXTURE}')

# yapf: disable
OFFICIAL = {
    'osvos/00000/obj1/pred1': (0.465067394390869, 0.6717028555674986),
    'osvos/00000/obj1/pred2': (0.49302317075400964, 0.6723805184389131),
    'osvos/00000/obj1/pred1+2': (0.9469720341905159, 0.9744518576035257),
    'osvos/00005/obj2/pred1': (0.0, 0.0),
    'osvos/00005/obj2/pred2': (0.0, 0.0),
    'osvos/00005/obj2/pred1+2': (0.0, 0.0),
    'osvos/00008/obj3/pred1': (0.0, 0.0),
    'osvos/00008/obj3/pred2': (0.0, 0.0),
    'osvos/00008/obj3/pred1+2': (0.0, 0.0),
    'osvos/00013/obj4/pred1': (0.0, 0.0),
    'osvos/00013/obj4/pred2': (0.0, 0.0),
    'osvos/00013/obj4/pred1+2': (0.0, 0.0),
    'rvos/00000/obj1/pred1': (0.8827138820618281, 0.8141762308279387),
    'rvos/00000/obj1/pred2': (0.00011522894551111239, 0.012792292355740973),
    'rvos/00000/obj1/pred3': (1.3816353035452762e-05, 0.051435653790539146),
    'rvos/00000/obj1/pred4': (0.0029021405597249436, 0.4469762385124618),
    'rvos/00000/obj1/pred1+2': (0.7000676150450104, 0.6578219408881566),
    'rvos/00005/obj2/pred1': (0.0, 0.0),
    'rvos/00005/obj2/pred2': (0.34109275117597393, 0.5463423526654341),
    'rvos/00005/obj2/pred3': (0.0, 0.0),
    'rvos/00005/obj2/pred4': (0.0, 0.0),
    'rvos/00005/obj2/pred1+2': (0.08599665500988292, 0.2610724641288252),
    'rvos/00008/obj3/pred1': (0.0, 0.0),
    'rvos/00008/obj3/pred2': (0.0, 0.0),
    'rvos/00008/obj3/pred3': (0.41078035175593375, 0.4510669886190661),
    'rvos/00008/obj3/pred4': (0.0, 0.0),
    'rvos/00008/obj3/pred1+2': (0.0, 0.0),
    'rvos/00013/obj4/pred1': (0.0, 0.0),
    'rvos/00013/obj4/pred2': (0.2820499796830557, 0.36932192231731403),
    'rvos/00013/obj4/pred3': (0.022248831550079184, 0.09529613829020997),
    'rvos/00013/obj4/pred4': (0.0, 0.0),
    'rvos/00013/obj4/pred1+2': (0.08829421866056096, 0.18512407602956704),
    'void/osvos/00000/obj1/pred1+2': (0.9398465262398928, 0.9863442525312686),
    'bound3/osvos/00000/obj1/pred1+2': (0.9469720341905159, 0.901695764468748),
}
OFFICIAL_SEQ = {
    'osvos': (
        [0.9469720341905159, 0.9258578762496622, 0.9094306401480443, 0.8929121725731896, 0.8829863475113771, 0.8608461071211634, 0.8389445759965817, 0.8073489133141252, 0.7298134995837835, 0.7535697916299404, 0.4725054229934924, 0.676868389110456, 0.37575012652736606, 0.4051522669255384, 0.5278313493382989, 0.5431876731638555],
        [0.9744518576035257, 0.9422911002946491, 0.8910392448275738, 0.850018072912717, 0.8288894041270578, 0.8104869557250509, 0.7930556882223708, 0.752751005539956, 0.678199719844589, 0.6992891387006116, 0.5751567790429513, 0.6154536023616018, 0.5193855012681576, 0.4607574670395916, 0.4367068358750134, 0.40860615350925217]),
    'rvos': (
        [0.8827138820618281, 0.8986781811772999, 0.8929673916900259, 0.8725325009311318, 0.8432910131939259, 0.8179395308611469, 0.8000705778561976, 0.7838561049087365, 0.759714889123548, 0.7344195733211992, 0.7176574333437079, 0.6823815809775248, 0.657909019980325, 0.631848076567257, 0.5997315302774188, 0.5438787622562968],
        [0.8141762308279387, 0.8679034486813866, 0.842552689516338, 0.8085415096417349, 0.7952212468467298, 0.7489349354210219, 0.7434923994315022, 0.7690355329949239, 0.7261786302712404, 0.7022722778803059, 0.646641475014659, 0.609704565361537, 0.5849293372319688, 0.54032327530909, 0.49749122571261445, 0.4494748367233953]),
}
# yapf: enable

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


@pytest.mark.parametrize('key', sorted(k for k in OFFICIAL if '/' in k
                                       and k.split('/')[0] in ('osvos',
                                                               'rvos')))
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
    pred16 = np.stack([
        np.isin(_png('predictions', method, 'judo', f'{t:05d}.png'), ids)
        for t in range(16)
    ])
    j_ref, f_ref = OFFICIAL_SEQ[method]
    np.testing.assert_allclose(region_jaccard(gt16, pred16), j_ref, rtol=0,
                               atol=TOL)
    np.testing.assert_allclose(boundary_f(gt16, pred16), f_ref, rtol=0,
                               atol=TOL)

"""Compute reference J / F values on the davis-judo fixture with the OFFICIAL
DAVIS 2017 evaluation code (not part of mmrvos; not vendored).

Usage (outside the repository, the official code checked out somewhere)::

    git clone https://github.com/davisvideochallenge/davis2017-evaluation
    #   (commit ac7c43fca936f9722837b7fbd337d284ba37004b)
    pip install --target /tmp/site scikit-image   # the official F needs skimage
    PYTHONPATH=davis2017-evaluation:/tmp/site python \
        tests/evaluation/make_official_reference.py ../shared/fixtures/davis-judo

It prints the ``OFFICIAL`` dicts pasted into ``tests/evaluation/eval_fixture_reference.py``.
Ground truth of a frame is ``annotation == obj_id``; the prediction is the union
of the listed ids of a method's palette PNG. ``Annotations/judo/00005.png`` is
one column narrower than the frame, so ground truth is zero-padded on the right
/ bottom to the prediction size (the policy of mmrvos, see docs/en/evaluation.md)
before it is handed to the official functions.
"""
import sys
from os import path as osp

import numpy as np
from davis2017.metrics import db_eval_boundary, db_eval_iou
from PIL import Image

CASES = {
    'osvos': [(1, ), (2, ), (1, 2)],
    'rvos': [(1, ), (2, ), (3, ), (4, ), (1, 2)],
}
FRAMES = {'00000': 1, '00005': 2, '00008': 3, '00013': 4}


def load(p):
    return np.array(Image.open(p))


def main(root):
    out = {}
    for method, id_sets in CASES.items():
        for frame, obj in FRAMES.items():
            ann = load(osp.join(root, 'Annotations/judo', frame + '.png'))
            pred = load(osp.join(root, 'predictions', method, 'judo', frame + '.png'))
            gt = np.zeros(pred.shape, dtype=bool)
            h, w = min(ann.shape[0], pred.shape[0]), min(ann.shape[1], pred.shape[1])
            gt[:h, :w] = ann[:h, :w] == obj
            for ids in id_sets:
                p = np.isin(pred, ids)
                key = f'{method}/{frame}/obj{obj}/pred{"+".join(map(str, ids))}'
                out[key] = (float(db_eval_iou(gt, p)), float(db_eval_boundary(gt, p)))
    # void pixels and a pixel radius, on one real pair
    ann = load(osp.join(root, 'Annotations/judo/00000.png'))
    pred = load(osp.join(root, 'predictions/osvos/judo/00000.png'))
    gt, p = ann == 1, np.isin(pred, (1, 2))
    void = np.zeros(gt.shape, dtype=bool)
    void[200:300, 300:500] = True
    out['void/osvos/00000/obj1/pred1+2'] = (float(db_eval_iou(gt, p, void)),
                                            float(db_eval_boundary(gt, p, void)))
    out['bound3/osvos/00000/obj1/pred1+2'] = (float(db_eval_iou(gt, p)),
                                              float(db_eval_boundary(gt, p, bound_th=3)))
    # (T, H, W) calls: frame-0 ground truth of object 1 against every frame
    frames = [f'{i:05d}' for i in range(16)]
    gt16 = np.repeat(gt[None], 16, axis=0)
    seq = {}
    for method, ids in (('osvos', (1, 2)), ('rvos', (1, ))):
        p16 = np.stack([
            np.isin(load(osp.join(root, 'predictions', method, 'judo', fr + '.png')), ids)
            for fr in frames
        ])
        seq[method] = ([float(v) for v in db_eval_iou(gt16, p16)],
                       [float(v) for v in db_eval_boundary(gt16, p16)])
    print('OFFICIAL = {')
    for k, (j, f) in out.items():
        print(f'    {k!r}: ({j!r}, {f!r}),')
    print('}')
    print('OFFICIAL_SEQ = {')
    for k, (j, f) in seq.items():
        print(f'    {k!r}: (')
        print(f'        {j!r},')
        print(f'        {f!r}),')
    print('}')


if __name__ == '__main__':
    main(sys.argv[1])

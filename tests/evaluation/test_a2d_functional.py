"""A2D mAP / IoU metrics: hand-computed answers and pycocotools' COCOeval."""
import contextlib
import io

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmrvos.evaluation.functional.a2d import (a2d_metrics, coco_mask_ap, encode_masks,
                                              precision_and_iou)


def _box(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def _hand_set():
    """3 samples, GT 10x10 squares; detections sorted by score:
    d1 IoU 1 (0.9), d2 IoU 0.64 (0.8, an 8x8 square inside), d3 IoU 0 (0.7)."""
    g = _box(40, 40, 5, 15, 5, 15)
    return [
        dict(gt=encode_masks(g)[0], preds=encode_masks(g), scores=[0.9]),
        dict(gt=encode_masks(g)[0], preds=encode_masks(_box(40, 40, 5, 13, 5, 13)), scores=[0.8]),
        dict(gt=encode_masks(g)[0], preds=encode_masks(_box(40, 40, 25, 35, 25, 35)), scores=[0.7]),
    ]


def test_map_hand_computed():
    # IoU thresholds .50/.55/.60: d1, d2 TP, d3 FP -> recall 2/3 at
    # precision 1 -> 67 of the 101 recall points (0.00 .. 0.66) -> 67/101.
    # thresholds .65 ... .95 (7 of them): only d1 -> recall 1/3 -> 34/101.
    res = coco_mask_ap(_hand_set())
    assert res['AP50'] == pytest.approx(67 / 101, abs=1e-12)
    assert res['AP75'] == pytest.approx(34 / 101, abs=1e-12)
    assert res['mAP'] == pytest.approx((3 * 67 + 7 * 34) / 1010, abs=1e-12)


def test_all_queries_submitted_raise_map():
    # a second, lower-scored but perfect query on sample 3 turns the FP's
    # sample into a hit at every threshold once all queries are submitted
    samples = _hand_set()
    g = mask_utils.decode(dict(samples[2]['gt'], counts=samples[2]['gt']['counts'].encode()))
    samples[2]['preds'] = samples[2]['preds'] + encode_masks(g.astype(bool))
    samples[2]['scores'] = [0.7, 0.1]
    assert coco_mask_ap(samples)['mAP'] > coco_mask_ap(_hand_set())['mAP']
    # the top-1 metrics still use the 0.7 query (IoU 0)
    assert precision_and_iou(samples)['P@0.5'] == pytest.approx(2 / 3)


def test_precision_and_iou_hand_computed():
    res = precision_and_iou(_hand_set())
    ious = [(100 + 1e-6) / (100 + 1e-6), (64 + 1e-6) / (100 + 1e-6), 1e-6 / (200 + 1e-6)]
    assert res['mIoU'] == pytest.approx(np.mean(ious), abs=1e-12)
    assert res['oIoU'] == pytest.approx((100 + 64) / (100 + 100 + 200))
    assert res['P@0.5'] == pytest.approx(2 / 3)
    assert res['P@0.6'] == pytest.approx(2 / 3)
    assert res['P@0.7'] == pytest.approx(1 / 3)
    assert res['P@0.9'] == pytest.approx(1 / 3)


def test_top1_tie_takes_the_last():
    g = _box(20, 20, 0, 10, 0, 10)
    s = dict(
        gt=encode_masks(g)[0],
        preds=encode_masks(np.stack([np.zeros_like(g), g])),
        scores=[0.5, 0.5])
    assert precision_and_iou([s])['mIoU'] == pytest.approx(1.0)


def test_equals_cocoeval_on_random_set():
    """Our wrapper against a COCOeval run built independently here."""
    rng = np.random.default_rng(0)
    samples, images, anns, dets = [], [], [], []
    for i in range(1, 9):
        h, w = 30, 40
        y, x = rng.integers(0, 15, 2)
        g = _box(h, w, y, y + 12, x, x + 20)
        preds, scores = [], []
        for _ in range(3):
            dy, dx = rng.integers(-4, 5, 2)
            preds.append(np.roll(g, (dy, dx), axis=(0, 1)))
            scores.append(float(rng.random()))
        samples.append(
            dict(gt=encode_masks(g)[0], preds=encode_masks(np.stack(preds)), scores=scores))
        rle = mask_utils.encode(np.asfortranarray(g.astype(np.uint8)))
        images.append(dict(id=i, height=h, width=w))
        anns.append(
            dict(
                id=i,
                image_id=i,
                category_id=7,
                iscrowd=0,
                segmentation=rle,
                area=float(g.sum()),
                bbox=list(mask_utils.toBbox(rle))))
        for p, sc in zip(preds, scores):
            dets.append(
                dict(
                    image_id=i,
                    category_id=7,
                    score=sc,
                    segmentation=mask_utils.encode(np.asfortranarray(p.astype(np.uint8)))))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dict(images=images, annotations=anns, categories=[dict(id=7, name='x')])
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), iouType='segm')
        ev.params.useCats = 0
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    res = a2d_metrics(samples)
    assert res['mAP'] == pytest.approx(ev.stats[0], abs=1e-12)
    assert res['AP50'] == pytest.approx(ev.stats[1], abs=1e-12)
    assert res['AP75'] == pytest.approx(ev.stats[2], abs=1e-12)
    assert 0 < res['mAP'] < 1

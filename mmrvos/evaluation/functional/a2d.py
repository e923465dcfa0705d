"""A2D-Sentences / JHMDB-Sentences metrics (MTTR / ReferFormer protocol).

Each sample is one annotated frame of one expression with exactly one target.

* ``mAP``: COCO mask AP@[.5:.95] by :class:`pycocotools.cocoeval.COCOeval`
  with ``useCats = 0`` (categories ignored); every surviving query prediction
  of a sample is submitted with its score (submitting the top-1 only lowers
  mAP). Also AP50, AP75 and AP small / medium / large.
* ``overall IoU`` = sum of intersections / sum of unions and ``mean IoU`` =
  mean of per-sample ``(I + 1e-6) / (U + 1e-6)``, both of the top-scoring
  prediction (ties: the last one, as the reference's stable sort);
  ``P@k`` = fraction of samples whose IoU is ``> k`` for k in 0.5 ... 0.9.
"""
import contextlib
import io
from typing import Dict, List, Sequence

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

__all__ = ['encode_masks', 'coco_mask_ap', 'precision_and_iou', 'a2d_metrics']

AP_KEYS = ('mAP', 'AP50', 'AP75', 'AP_s', 'AP_m', 'AP_l')
PREC_THRS = (0.5, 0.6, 0.7, 0.8, 0.9)
_EPS = 1e-6


def encode_masks(masks: np.ndarray) -> List[dict]:
    """bool ``(k, H, W)`` (or ``(H, W)``) -> k COCO RLEs (``counts`` str)."""
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim == 2:
        masks = masks[None]
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0), dtype=np.uint8))
    for r in rles:
        r['counts'] = r['counts'].decode('ascii')
    return rles


def _bytes(rle: dict) -> dict:
    c = rle['counts']
    return dict(rle, counts=c.encode('ascii') if isinstance(c, str) else c)


def coco_mask_ap(samples: Sequence[dict], verbose: bool = False) -> Dict:
    """COCO mask AP with categories ignored.

    Args:
        samples (Sequence[dict]): ``gt`` (one RLE), ``preds`` (list of RLEs)
            and ``scores`` (list of float) per sample.
        verbose (bool): Let ``COCOeval.summarize`` print.

    Returns:
        dict: ``mAP``, ``AP50``, ``AP75``, ``AP_s``, ``AP_m``, ``AP_l``.
    """
    images, anns, dets = [], [], []
    for i, s in enumerate(samples, start=1):
        h, w = s['gt']['size']
        images.append(dict(id=i, height=h, width=w))
        gt = _bytes(s['gt'])
        anns.append(
            dict(
                id=i,
                image_id=i,
                category_id=1,
                iscrowd=0,
                segmentation=s['gt'],
                area=float(mask_utils.area(gt)),
                bbox=mask_utils.toBbox(gt).tolist()))
        for rle, score in zip(s['preds'], s['scores']):
            dets.append(dict(image_id=i, category_id=1, segmentation=rle, score=float(score)))
    coco_gt = COCO()
    coco_gt.dataset = dict(images=images, annotations=anns, categories=[dict(id=1, name='object')])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        coco_gt.createIndex()
        if not dets:
            return {k: 0.0 for k in AP_KEYS}
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, iouType='segm')
        ev.params.useCats = 0
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    if verbose:
        print(out.getvalue())
    return {k: float(v) for k, v in zip(AP_KEYS, ev.stats[:6])}


def precision_and_iou(samples: Sequence[dict]) -> Dict:
    """Overall / mean IoU and P@k of the top-scoring prediction per sample.

    A sample without any prediction counts as an empty prediction.

    Returns:
        dict: ``oIoU``, ``mIoU`` and ``P@0.5`` ... ``P@0.9``.
    """
    ious, inter_sum, union_sum = [], 0.0, 0.0
    for s in samples:
        gt = mask_utils.decode(_bytes(s['gt'])).astype(bool)
        if len(s['preds']):
            scores = np.asarray(s['scores'], dtype=np.float64)
            top = len(scores) - 1 - int(np.argmax(scores[::-1]))
            pred = mask_utils.decode(_bytes(s['preds'][top])).astype(bool)
        else:
            pred = np.zeros_like(gt)
        inter = float(np.count_nonzero(gt & pred))
        union = float(np.count_nonzero(gt | pred))
        ious.append((inter + _EPS) / (union + _EPS))
        inter_sum += inter
        union_sum += union
    ious = np.asarray(ious)
    out = {'oIoU': inter_sum / union_sum if union_sum > 0 else 1.0, 'mIoU': float(ious.mean())}
    for k in PREC_THRS:
        out[f'P@{k}'] = float((ious > k).mean())
    return out


def a2d_metrics(samples: Sequence[dict], verbose: bool = False) -> Dict:
    """:func:`coco_mask_ap` and :func:`precision_and_iou` together."""
    if not samples:
        raise ValueError('no sample to evaluate')
    res = coco_mask_ap(samples, verbose=verbose)
    res.update(precision_and_iou(samples))
    return res

"""A2D-Sentences / JHMDB-Sentences metric: mask mAP (categories ignored),
overall / mean IoU and P@k, as an mmdet ``BaseVideoMetric``."""
import warnings
from typing import List, Optional, Sequence

import numpy as np
from mmdet.evaluation.metrics.base_video_metric import BaseVideoMetric
from mmdet.registry import METRICS
from mmengine.logging import MMLogger

from ..functional.a2d import a2d_metrics, encode_masks
from ..functional.rvos_files import report_unscorable
from ._samples import field, frame_key, frame_masks, inst_field, to_numpy


@METRICS.register_module()
class A2DMetric(BaseVideoMetric):
    """mAP@[.5:.95], AP50, AP75, oIoU, mIoU and P@0.5 ... 0.9.

    Ground truth comes with the samples: a frame is an evaluated sample when
    its ``gt_instances.masks`` holds at least one mask (the annotated frame of
    A2D / JHMDB; several masks are merged by union); other frames are skipped.
    The masks must be at the original frame size, like the predictions (load
    annotations after ``Resize`` in the test pipeline, the mmdet convention).
    Every surviving query of the frame (``pred_instances.masks`` ``(k, H, W)``
    with ``scores`` ``(k,)``) is submitted to COCOeval with its score.

    Args:
        verbose (bool): Print COCOeval's summary.
        strict (bool): A (video, expression) sample none of whose frames has a
            ground-truth mask would silently drop out of the scores: raise a
            ``ValueError`` listing them; ``strict=False`` leaves them out with
            a warning giving their count. Defaults to True.
        collect_device (str): ``'cpu'`` or ``'gpu'``.
        prefix (str, optional): Metric name prefix; defaults to ``'a2d'``.
    """
    default_prefix: Optional[str] = 'a2d'

    def __init__(self,
                 verbose: bool = False,
                 strict: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.verbose = verbose
        self.strict = strict

    def process_video(self, data_samples: Sequence) -> None:
        self._process_frames(data_samples)

    def process_image(self, data_samples: Sequence, ori_video_len: int) -> None:
        self._process_frames(data_samples)

    def _process_frames(self, frames: Sequence) -> None:
        seen = {}
        for sample in frames:
            key = frame_key(sample)
            seen[key[:2]] = True
            gt = frame_masks(sample, 'gt_instances')
            if gt is None or gt.shape[0] == 0:
                continue
            gt = gt.any(0)
            pred = frame_masks(sample, 'pred_instances')
            scores = to_numpy(inst_field(field(sample, 'pred_instances'), 'scores'))
            if pred is None:
                pred = np.zeros((0, ) + gt.shape, bool)
            if scores is None or len(scores) != pred.shape[0]:
                raise ValueError(f'{"/".join(key)}: pred_instances needs one '
                                 f'score per mask ({pred.shape[0]} masks)')
            if pred.shape[0] and pred.shape[1:] != gt.shape:
                raise ValueError(f'{"/".join(key)}: predicted masks '
                                 f'{pred.shape[1:]} and ground truth '
                                 f'{gt.shape} differ in size')
            self.results.append(
                dict(
                    key=key,
                    gt=encode_masks(gt)[0],
                    preds=encode_masks(pred) if pred.shape[0] else [],
                    scores=[float(s) for s in np.atleast_1d(scores)]))
        for video_id, exp_id in seen:  # marks the sample as predicted
            self.results.append(dict(key=None, exp=(video_id, exp_id)))

    def compute_metrics(self, results: List[dict]) -> dict:
        scored = {r['key'][:2] for r in results if r['key'] is not None}
        unscorable = sorted({(*r['exp'], 'no frame with a ground-truth mask was '
                              'predicted')
                             for r in results if r['key'] is None and r['exp'] not in scored})
        report_unscorable(unscorable, 'A2DMetric', self.strict,
                          'strict=False (tools/test.py --no-strict)')
        results = [r for r in results if r['key'] is not None]
        samples, seen = [], set()
        for r in results:
            if r['key'] in seen:
                continue
            seen.add(r['key'])
            samples.append(r)
        if len(samples) != len(results):
            warnings.warn(f'A2DMetric: {len(results) - len(samples)} '
                          'duplicated frame(s) dropped')
        if not samples:
            warnings.warn('A2DMetric: no annotated frame to evaluate')
            return {}
        metrics = a2d_metrics(samples, verbose=self.verbose)
        logger = MMLogger.get_current_instance()
        logger.info(f'A2DMetric on {len(samples)} samples: ' +
                    ', '.join(f'{k} {100 * v:.2f}' for k, v in metrics.items()))
        return metrics

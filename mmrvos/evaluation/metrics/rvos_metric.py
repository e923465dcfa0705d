"""J&F metric for Ref-YouTube-VOS (valid with GT), Ref-DAVIS17, MeViS and the
synthetic benchmark, as an mmdet ``BaseVideoMetric``."""
import json
import os.path as osp
import warnings
from collections import OrderedDict, defaultdict
from typing import List, Optional, Sequence

import numpy as np
from mmdet.evaluation.metrics.base_video_metric import BaseVideoMetric
from mmdet.registry import METRICS
from mmengine.dist import is_main_process
from mmengine.logging import MMLogger

from ..functional.mask_io import DEFAULT_SIZE_TOLERANCE
from ..functional.rvos import evaluate_expression, format_rvos_table, summarize_rvos
from ..functional.rvos_files import report_unscorable
from ..functional.rvos_gt import RVOSGroundTruth
from ..writers import RVOSResultWriter, make_submission_zip
from ._samples import field, frame_key, frame_masks


@METRICS.register_module()
class RVOSMetric(BaseVideoMetric):
    """Region J, boundary F and J&F with the DAVIS 2017 definitions.

    Ground truth is read from disk (Ref-YouTube-VOS layout, see
    :class:`~mmrvos.evaluation.functional.RVOSGroundTruth`); the predictions
    are the ``pred_instances.masks`` ``(k, H, W)`` of each frame at its
    original size (``k`` masks are merged by union; ``k = 0`` is empty).
    Only frames annotated for the expression count. Per expression J and F are
    the means over its frames; the dataset value is the mean over
    expressions, or (``use_annotators``, Ref-DAVIS) the mean over the four
    annotators of their means.

    Args:
        data_root (str): Dataset folder with the meta file and annotations.
        meta_file (str): Expression file relative to ``data_root``.
        ann_dir (str): PNG annotation folder relative to ``data_root``.
        mask_dict_file (str, optional): MeViS ``mask_dict.json``; every frame
            counts and targets are unions of the expression's objects.
        void_label (int, optional): Annotation value of void pixels.
        use_annotators (bool): Ref-DAVIS: score per annotator (metainfo
            ``annotator``, else the expression order, see
            :meth:`RVOSGroundTruth.annotator`) and average the four.
        bound_th (float): Boundary tolerance (fraction of the diagonal).
        size_tolerance (int): Tolerated annotation / frame size difference in
            pixels (padded / cropped with a warning), beyond it an error.
            Defaults to 1 (DAVIS ``judo/00005.png`` is 853 px wide for 854).
        strict (bool): An expression that was predicted but that no frame
            counts for (its object is in no annotation PNG, ...) would
            silently drop out of the J&F average: raise a ``ValueError``
            listing every such expression (video, expression id, reason).
            ``strict=False`` (``tools/test.py --no-strict``) leaves them out
            with one warning giving their count. Defaults to True.
        format_only (bool): Only write the result PNGs (no ground truth, e.g.
            Ref-YouTube-VOS valid, MeViS valid), then zip them.
        outfile_dir (str, optional): Write the predicted masks there as
            palette PNGs ``<video>/<exp_id>/<frame>.png``.
        zip_file (str, optional): Zip ``outfile_dir`` into this file at the
            end, with ``zip_root`` (``'ref_youtube_vos'`` -> entries under
            ``Annotations/``, ``'mevis'`` -> at the zip root, or a folder).
        overwrite (bool): Allow replacing an existing ``outfile_dir`` / zip.
        dump_file (str, optional): JSON with the summary and per-expression
            (and per-frame) J / F.
        collect_device (str): ``'cpu'`` or ``'gpu'``.
        prefix (str, optional): Metric name prefix; defaults to ``'rvos'``.
    """
    default_prefix: Optional[str] = 'rvos'

    def __init__(self,
                 data_root: Optional[str] = None,
                 meta_file: str = 'meta_expressions.json',
                 ann_dir: str = 'Annotations',
                 mask_dict_file: Optional[str] = None,
                 void_label: Optional[int] = 255,
                 use_annotators: bool = False,
                 bound_th: float = 0.008,
                 size_tolerance: int = DEFAULT_SIZE_TOLERANCE,
                 strict: bool = True,
                 format_only: bool = False,
                 outfile_dir: Optional[str] = None,
                 zip_file: Optional[str] = None,
                 zip_root: str = 'ref_youtube_vos',
                 overwrite: bool = False,
                 dump_file: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if format_only and outfile_dir is None:
            raise ValueError('format_only=True needs outfile_dir')
        if zip_file is not None and outfile_dir is None:
            raise ValueError('zip_file needs outfile_dir')
        if not format_only and data_root is None:
            raise ValueError('data_root is required unless format_only=True')
        self.format_only = format_only
        self.use_annotators = use_annotators
        self.bound_th = bound_th
        self.zip_file = zip_file
        self.zip_root = zip_root
        self.overwrite = overwrite
        self.dump_file = dump_file
        self.strict = strict
        self._video_shapes = {}  # video -> (frame size, frame) seen first
        self.gt = None
        if not format_only:
            self.gt = RVOSGroundTruth(
                data_root,
                meta_file=meta_file,
                ann_dir=ann_dir,
                mask_dict_file=mask_dict_file,
                void_label=void_label,
                size_tolerance=size_tolerance)
        self.writer = None
        if outfile_dir is not None:
            self.writer = RVOSResultWriter(
                outfile_dir, overwrite=overwrite, prepare=is_main_process())
            if zip_file is not None and osp.exists(zip_file) \
                    and not overwrite:
                raise FileExistsError(f'{zip_file} exists; pass '
                                      'overwrite=True (--overwrite)')

    # ------------------------------------------------------------ process
    def process_video(self, data_samples: Sequence) -> None:
        """Score all frames of one (video, expression) sample."""
        self._process_frames(data_samples)

    def process_image(self, data_samples: Sequence, ori_video_len: int) -> None:
        """Score frames that arrive one (or a few) at a time."""
        self._process_frames(data_samples)

    def _pred_mask(self, sample, key) -> np.ndarray:
        ori_shape = tuple(int(s) for s in field(sample, 'ori_shape')[:2])
        masks = frame_masks(sample, 'pred_instances')
        if masks is None or masks.shape[0] == 0:
            return np.zeros(ori_shape, bool)
        if masks.shape[1:] != ori_shape:
            raise ValueError(f'prediction of {"/".join(key)} has size '
                             f'{masks.shape[1:]}, the frame (ori_shape) is '
                             f'{ori_shape}; masks must be at the original '
                             'frame size')
        return masks.any(0)

    def _check_frame_size(self, key, shape, sample) -> None:
        """Every frame of a video must have one size (else some frames would
        be compared at another scale, silently)."""
        name = field(sample, 'img_path') or f'frame {"/".join(key)}'
        first = self._video_shapes.setdefault(key[0], (shape, name))
        if first[0] != shape:
            raise ValueError(f'{name}: frame size {shape[1]}x{shape[0]} (WxH) differs '
                             f'from the other frames of video {key[0]!r} '
                             f'({first[0][1]}x{first[0][0]}, e.g. {first[1]})')

    def _process_frames(self, frames: Sequence) -> None:
        by_exp = OrderedDict()
        seen = OrderedDict()
        for sample in frames:
            key = frame_key(sample)
            pred = self._pred_mask(sample, key)
            if self.writer is not None:
                self.writer.write(*key, pred)
            if self.format_only:
                continue
            self._check_frame_size(key, pred.shape, sample)
            video_id, exp_id, frame_id = key
            seen[(video_id, exp_id)] = True
            target = self.gt.target(video_id, exp_id, frame_id, pred.shape,
                                    field(sample, 'img_path'))
            if target is None:
                continue  # not annotated for this expression
            annotator = field(sample, 'annotator')
            if annotator is None and self.use_annotators:
                annotator = self.gt.annotator(video_id, exp_id)
            exp_type = field(sample, 'exp_type')
            if exp_type is None:
                exp_type = self.gt.expression(video_id, exp_id).get('exp_type')
            by_exp.setdefault((video_id, exp_id, pred.shape), []).append(
                (frame_id, target, pred, annotator, exp_type))
        for video_id, exp_id in seen:
            # marks the expression as predicted (to find those never scored)
            self.results.append(dict(video_id=video_id, exp_id=exp_id, frame_id=None))
        for (video_id, exp_id, _), items in by_exp.items():
            gts = np.stack([t[0] for _, t, _, _, _ in items])
            preds = np.stack([p for _, _, p, _, _ in items])
            voids = [t[1] for _, t, _, _, _ in items]
            void = None
            if any(v is not None for v in voids):
                void = np.stack(
                    [v if v is not None else np.zeros(gts.shape[1:], bool) for v in voids])
            res = evaluate_expression(gts, preds, void, self.bound_th)
            for (frame_id, _, _, annotator, exp_type), j, f in zip(items, res['J'], res['F']):
                self.results.append(
                    dict(
                        video_id=video_id,
                        exp_id=exp_id,
                        frame_id=frame_id,
                        J=float(j),
                        F=float(f),
                        annotator=None if annotator is None else int(annotator),
                        exp_type=exp_type))

    # ------------------------------------------------------------ compute
    def compute_metrics(self, results: List[dict]) -> dict:
        logger = MMLogger.get_current_instance()
        if self.zip_file is not None:
            make_submission_zip(
                self.writer.out_dir, self.zip_file, self.zip_root, overwrite=self.overwrite)
            logger.info(f'submission zip written to {self.zip_file}')
        if self.format_only:
            logger.info(f'results written to {self.writer.out_dir}')
            return {}
        self._video_shapes = {}
        records = self._expression_records(results)
        scored = {(r['video_id'], r['exp_id']) for r in records}
        unscorable = []
        for r in results:
            k = (r['video_id'], r['exp_id'])
            if r['frame_id'] is None and k not in scored:
                scored.add(k)  # list once
                reason = self.gt.unscorable_reason(
                    *k) or ('none of its annotated frames '
                            f'{self.gt.annotated_frames(*k)} was predicted')
                unscorable.append((*k, reason))
        report_unscorable(unscorable, self.gt.meta_path, self.strict,
                          'strict=False (tools/test.py --no-strict)')
        if not records:
            warnings.warn('RVOSMetric: no annotated frame was predicted')
            return {}
        summary = summarize_rvos(records)
        logger.info('\n' + format_rvos_table(summary, self.__class__.__name__))
        if self.dump_file is not None:
            with open(self.dump_file, 'w') as f:
                json.dump(dict(summary=summary, expressions=records), f, indent=1, default=str)
            logger.info(f'per-expression results dumped to {self.dump_file}')
        metrics = {k: summary[k] for k in ('J&F', 'J', 'F')}
        for a, v in summary.get('per_annotator', {}).items():
            metrics[f'J&F_annotator{a}'] = v['J&F']
        for t, v in summary.get('by_type', {}).items():
            metrics[f'J&F_{t}'] = v['J&F']
        return metrics

    @staticmethod
    def _expression_records(results: List[dict]) -> List[dict]:
        """Frame results -> one record per expression (duplicates dropped)."""
        frames = defaultdict(dict)
        meta = {}
        dup = 0
        for r in results:
            if r['frame_id'] is None:  # "predicted" marker
                continue
            k = (r['video_id'], r['exp_id'])
            if r['frame_id'] in frames[k]:
                dup += 1
                continue
            frames[k][r['frame_id']] = (r['J'], r['F'])
            meta[k] = (r['annotator'], r['exp_type'])
        if dup:
            warnings.warn(f'RVOSMetric: {dup} frame(s) predicted more than '
                          'once; the first prediction was kept')
        records = []
        for (video_id, exp_id), fr in frames.items():
            j = float(np.mean([v[0] for v in fr.values()]))
            f = float(np.mean([v[1] for v in fr.values()]))
            annotator, exp_type = meta[(video_id, exp_id)]
            records.append(
                dict(
                    video_id=video_id,
                    exp_id=exp_id,
                    J=j,
                    F=f,
                    **{'J&F': (j + f) / 2},
                    num_frames=len(fr),
                    frames={
                        k: list(v)
                        for k, v in sorted(fr.items())
                    },
                    annotator=annotator,
                    exp_type=exp_type))
        return records

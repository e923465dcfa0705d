"""Score a directory of predicted PNGs against a :class:`RVOSGroundTruth`.

Prediction layouts:

* ``'expression'`` (Ref-YouTube-VOS / MeViS server layout, what
  :mod:`mmrvos.evaluation.writers` writes): ``<pred_root>/<video>/<exp_id>/
  <frame>.png``; any non-zero pixel is foreground.
* ``'object'`` (DAVIS layout, one PNG per frame for all objects):
  ``<pred_root>/<video>/<frame>.png`` with pixel = object id; the prediction of
  an expression is the union of its ``obj_id`` values.

Policies (also in ``docs/en/evaluation.md``):

* a prediction PNG whose size differs from the frame size: ``ValueError``
  naming the file;
* a missing prediction PNG of a frame that counts: ``missing='error'``
  (default, as the official DAVIS code, which stops) raises
  ``FileNotFoundError`` naming the file; ``missing='empty'`` scores it as an
  empty mask and warns (once per expression, with the count);
* a video folder in ``pred_root`` that is not in the meta file: ``KeyError``
  naming the folder and the meta file;
* ``img_dir`` (frame images giving the frame size): a listed frame without
  an image, or frames of one video of different sizes, raise naming the
  frame;
* an expression that no frame counts for (no ``obj_id``, objects in no
  annotation PNG) would silently drop out of the J&F average: with
  ``strict=True`` (default) a ``ValueError`` lists every such expression
  (video, expression id, reason); ``strict=False`` skips them with one
  warning giving their count.
"""
import os
import os.path as osp
import warnings
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .mask_io import image_size, read_binary_png, read_index_png
from .rvos import evaluate_expression
from .rvos_gt import RVOSGroundTruth, _obj_ids

__all__ = ['evaluate_prediction_dir', 'report_unscorable', 'MAX_LISTED']

MAX_LISTED = 20  # expressions listed in a message
IMAGE_EXTS = ('.jpg', '.jpeg', '.png')

LAYOUTS = ('expression', 'object')
MISSING = ('error', 'empty')


def report_unscorable(unscorable: Sequence[Tuple[str, str, str]], source: str, strict: bool,
                      hint: str) -> None:
    """Raise (``strict``) or warn about expressions dropped from scoring.

    Args:
        unscorable: ``(video_id, exp_id, reason)`` of each expression.
        source (str): The meta file, for the message.
        strict (bool): Raise ``ValueError`` instead of warning.
        hint (str): How to opt out (e.g. ``'--no-strict'``).
    """
    if not unscorable:
        return
    lines = [f'  video {v!r} expression {e!r}: {r}' for v, e, r in unscorable[:MAX_LISTED]]
    if len(unscorable) > MAX_LISTED:
        lines.append(f'  ... and {len(unscorable) - MAX_LISTED} more')
    msg = (f'{source}: {len(unscorable)} expression(s) have no frame to '
           'score and would silently drop out of the average:\n' + '\n'.join(lines))
    if strict:
        raise ValueError(msg + f'\nFix the annotations, or pass {hint} to '
                         'score without them (with a warning)')
    warnings.warn(msg + f'\nnot strict: {len(unscorable)} expression(s) '
                  'left out of the average')


def _frame_images(img_dir: str, video: str, frames: Sequence[str]) -> Dict[str, Tuple[str, tuple]]:
    """``{frame: (image path, (H, W))}`` of a video's listed frames.

    Raises naming the file when the video folder or a listed frame is
    missing, or when the frames are not all of one size.
    """
    folder = osp.join(img_dir, video)
    if not osp.isdir(folder):
        raise FileNotFoundError(f'frame folder not found: {folder} (video '
                                f'{video!r}; --img-dir {img_dir})')
    out = {}
    for frame in frames:
        path = next((osp.join(folder, frame + e)
                     for e in IMAGE_EXTS if osp.isfile(osp.join(folder, frame + e))), None)
        if path is None:
            raise FileNotFoundError(f'frame not found: {osp.join(folder, frame)}'
                                    f'{{{",".join(IMAGE_EXTS)}}} (listed in "frames" of video '
                                    f'{video!r})')
        out[frame] = (path, image_size(path))
    sizes = Counter(s for _, s in out.values())
    if len(sizes) > 1:
        common = sizes.most_common(1)[0][0]
        odd = next(p for p, s in out.values() if s != common)
        ref = next(p for p, s in out.values() if s == common)
        h, w = image_size(odd)
        raise ValueError(f'{odd}: frame size {w}x{h} (WxH) differs from the '
                         f'other frames of video {video!r} '
                         f'({common[1]}x{common[0]}, e.g. {ref})')
    return out


def _read_prediction(path: str, layout: str, obj_ids: List[int],
                     video_obj_ids: List[int]) -> Optional[np.ndarray]:
    """Bool ``(H, W)`` prediction, ``None`` when the file is absent."""
    if not osp.isfile(path):
        return None
    if layout == 'expression':
        return read_binary_png(path)
    return np.isin(read_index_png(path, video_obj_ids), obj_ids)


def _frame_size(path: str, pred: Optional[np.ndarray], img: Optional[Tuple[str, Tuple[int, int]]],
                ann_shape: Tuple[int, int], tolerance: int, ann_path: str) -> tuple:
    """Frame size to score at; checks the prediction size.

    The image size when known (the prediction must equal it); otherwise the
    prediction size, which must agree with the annotation size within
    ``tolerance`` pixels per side.
    """
    if img is not None:
        img_path, img_shape = img
        if pred is not None and pred.shape != tuple(img_shape):
            raise ValueError(f'{path}: prediction size {pred.shape} does not '
                             f'match the frame size {tuple(img_shape)} of '
                             f'{img_path}')
        return tuple(img_shape)
    if pred is None:
        return tuple(ann_shape)
    if (abs(pred.shape[0] - ann_shape[0]) > tolerance
            or abs(pred.shape[1] - ann_shape[1]) > tolerance):
        raise ValueError(f'{path}: prediction size {pred.shape} does not '
                         f'match the annotation size {tuple(ann_shape)} of '
                         f'{ann_path}')
    return pred.shape


def evaluate_prediction_dir(gt: RVOSGroundTruth,
                            pred_root: str,
                            layout: str = 'expression',
                            missing: str = 'error',
                            img_dir: Optional[str] = None,
                            with_annotator: bool = False,
                            videos: Optional[Sequence[str]] = None,
                            bound_th: float = 0.008,
                            strict: bool = True) -> List[dict]:
    """Per-expression J / F of the predictions under ``pred_root``.

    Args:
        gt (RVOSGroundTruth): Ground truth.
        pred_root (str): Prediction folder (see module doc for layouts).
        layout (str): ``'expression'`` or ``'object'``.
        missing (str): ``'error'`` or ``'empty'`` for absent prediction PNGs.
        img_dir (str, optional): ``JPEGImages`` folder giving frame sizes;
            without it the annotation size is the frame size.
        with_annotator (bool): Attach the Ref-DAVIS annotator of each
            expression (see :meth:`RVOSGroundTruth.annotator`).
        videos (Sequence[str], optional): Restrict to these videos.
        bound_th (float): Boundary tolerance.
        strict (bool): Raise listing the expressions that no frame counts
            for, instead of leaving them out with a warning.

    Returns:
        list[dict]: One record per scored expression: ``video_id``,
        ``exp_id``, ``exp``, ``J``, ``F``, ``J&F``, ``num_frames``,
        ``frames`` (``{frame: [J, F]}``), ``annotator``, ``exp_type``.
    """
    if layout not in LAYOUTS:
        raise ValueError(f'layout must be one of {LAYOUTS}, got {layout!r}')
    if missing not in MISSING:
        raise ValueError(f'missing must be one of {MISSING}, got {missing!r}')
    if not osp.isdir(pred_root):
        raise FileNotFoundError(f'prediction folder not found: {pred_root}')
    if img_dir is not None and not osp.isdir(img_dir):
        raise FileNotFoundError(f'frame folder (img_dir) not found: {img_dir}')
    for name in sorted(os.listdir(pred_root)):
        if osp.isdir(osp.join(pred_root, name)) and name not in gt.videos:
            raise KeyError(f'{osp.join(pred_root, name)}: unknown video id '
                           f'{name!r} (not in {gt.meta_path})')
    if videos is not None:
        for v in videos:
            gt.video(v)  # raises with the meta file named
    todo, unscorable = [], []
    for video_id, exp_id in gt.expressions():
        if videos is not None and video_id not in videos:
            continue
        reason = gt.unscorable_reason(video_id, exp_id)
        if reason is not None:
            unscorable.append((video_id, exp_id, reason))
        else:
            todo.append((video_id, exp_id))
    report_unscorable(unscorable, gt.meta_path, strict, 'strict=False (--no-strict)')
    records, images = [], {}
    for video_id, exp_id in todo:
        exp = gt.expression(video_id, exp_id)
        frames = gt.annotated_frames(video_id, exp_id)
        if img_dir is not None and video_id not in images:
            images = {video_id: _frame_images(img_dir, video_id, gt.video(video_id)['frames'])}
        gts, preds, voids, missing_list = [], [], [], []
        for frame in frames:
            ann_path = gt.frame_path(video_id, frame)
            if gt.mask_dict is None:
                ann_shape = gt.annotation(video_id, frame).shape
            else:
                ann_shape = _mevis_shape(gt, video_id, exp, frame)
                ann_path = f'{gt.mask_dict_path} (video {video_id!r})'
            if layout == 'expression':
                path = osp.join(pred_root, video_id, exp_id, frame + '.png')
            else:
                path = osp.join(pred_root, video_id, frame + '.png')
            pred = _read_prediction(path, layout,
                                    _obj_ids(exp) if layout == 'object' else [],
                                    gt.video_obj_ids(video_id))
            if pred is None and missing == 'error':
                raise FileNotFoundError(f'prediction not found: {path}')
            img = images[video_id][frame] if img_dir is not None else None
            shape = _frame_size(path, pred, img, ann_shape, gt.size_tolerance, ann_path)
            if pred is None:
                missing_list.append(path)
                pred = np.zeros(shape, bool)
            source = img[0] if img is not None else (
                path if not missing_list or missing_list[-1] != path else None)
            target, void = gt.target(video_id, exp_id, frame, shape, source)
            gts.append(target)
            preds.append(pred)
            voids.append(void)
        if missing_list:
            warnings.warn(f'{video_id}/{exp_id}: {len(missing_list)} '
                          f'prediction(s) missing, scored as empty (first: '
                          f'{missing_list[0]})')
        records.append(
            _score(video_id, exp_id, exp, frames, gts, preds, voids, bound_th,
                   gt.annotator(video_id, exp_id) if with_annotator else None))
    return records


def _mevis_shape(gt, video_id, exp, frame):
    """Frame size of a MeViS frame: from any non-null RLE of the expression."""
    idx = gt.video(video_id)['frames'].index(frame)
    rles = [gt.mask_dict[str(a)] for a in exp.get('anno_id', [])]
    for rle in [r[idx] for r in rles] + [x for r in rles for x in r]:
        if rle is not None:
            return tuple(rle['size'])
    raise ValueError(f'{video_id}: cannot tell the frame size of {frame} '
                     f'(every object is null in {gt.mask_dict_path})')


def _score(video_id, exp_id, exp, frames, gts, preds, voids, bound_th, annotator) -> dict:
    """Stack frames (same size within an expression) and score them."""
    shapes = {g.shape for g in gts}
    if len(shapes) == 1:
        void = None
        if any(v is not None for v in voids):
            void = np.stack(
                [v if v is not None else np.zeros(g.shape, bool) for v, g in zip(voids, gts)])
        res = evaluate_expression(np.stack(gts), np.stack(preds), void, bound_th=bound_th)
        j, f = res['J'], res['F']
    else:  # frames of different sizes: score one by one
        j, f = [], []
        for g, p, v in zip(gts, preds, voids):
            r = evaluate_expression(g[None], p[None], None if v is None else v[None], bound_th)
            j.append(r['J'][0])
            f.append(r['F'][0])
        j, f = np.asarray(j), np.asarray(f)
    jm, fm = float(j.mean()), float(f.mean())
    return dict(
        video_id=video_id,
        exp_id=str(exp_id),
        exp=exp.get('exp'),
        J=jm,
        F=fm,
        **{'J&F': (jm + fm) / 2},
        num_frames=len(frames),
        frames={
            fr: [float(a), float(b)]
            for fr, a, b in zip(frames, j, f)
        },
        annotator=annotator,
        exp_type=exp.get('exp_type'))

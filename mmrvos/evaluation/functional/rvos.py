"""J&F of referring expressions: per expression, per dataset, as a table.

This is the one place where the RVOS protocol is written down; both
:class:`mmrvos.evaluation.RVOSMetric` and ``tools/eval_masks.py`` use it.

* Per expression: ``J`` and ``F`` are the means over the frames that count for
  it (see :mod:`.rvos_gt`), ``J&F = (J + F) / 2``.
* Dataset: the mean over expressions. With annotators (Ref-DAVIS) the mean is
  taken per annotator first and the dataset value is the mean of those.
* Groups (``exp_type``, e.g. static / spatial / motion) are means over their
  expressions.
"""
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np

from .davis import boundary_f, region_jaccard

__all__ = ['evaluate_expression', 'summarize_rvos', 'format_rvos_table']


def evaluate_expression(gt_masks: np.ndarray,
                        pred_masks: np.ndarray,
                        void: Optional[np.ndarray] = None,
                        bound_th: float = 0.008) -> Dict[str, np.ndarray]:
    """Per-frame J and F of one expression.

    Args:
        gt_masks (np.ndarray): bool ``(T, H, W)`` targets of the frames that
            count (only annotated frames).
        pred_masks (np.ndarray): bool ``(T, H, W)`` predictions, same frames.
        void (np.ndarray, optional): bool ``(T, H, W)`` ignored pixels.
        bound_th (float): Boundary tolerance, see :func:`boundary_f`.

    Returns:
        dict: ``J`` and ``F``, float64 ``(T,)``.
    """
    return dict(
        J=np.atleast_1d(region_jaccard(gt_masks, pred_masks, void)),
        F=np.atleast_1d(boundary_f(gt_masks, pred_masks, bound_th, void)))


def _mean_jf(records: Sequence[dict]) -> dict:
    j = float(np.mean([r['J'] for r in records]))
    f = float(np.mean([r['F'] for r in records]))
    return {'J': j, 'F': f, 'J&F': (j + f) / 2, 'num_expressions': len(records)}


def summarize_rvos(records: Sequence[dict]) -> dict:
    """Dataset J, F and J&F from per-expression results.

    Args:
        records (Sequence[dict]): One per expression with ``J`` and ``F``
            (means over its frames) and optionally ``annotator`` (int or
            None) and ``exp_type`` (str or None).

    Returns:
        dict: ``J``, ``F``, ``J&F``, ``num_expressions``; ``per_annotator``
        ``{a: {...}}`` when annotators are given (the dataset values are then
        the mean over annotators); ``by_type`` ``{type: {...}}`` when types
        are given.
    """
    if not records:
        raise ValueError('no expression to summarize')
    out: dict = {}
    annotated = [r for r in records if r.get('annotator') is not None]
    if annotated:
        if len(annotated) != len(records):
            raise ValueError('either every expression has an annotator or '
                             'none has')
        groups = defaultdict(list)
        for r in records:
            groups[int(r['annotator'])].append(r)
        per = {a: _mean_jf(groups[a]) for a in sorted(groups)}
        j = float(np.mean([v['J'] for v in per.values()]))
        f = float(np.mean([v['F'] for v in per.values()]))
        out.update(J=j, F=f, **{'J&F': (j + f) / 2}, num_expressions=len(records))
        out['per_annotator'] = per
    else:
        out.update(_mean_jf(records))
    types = defaultdict(list)
    for r in records:
        if r.get('exp_type') is not None:
            types[str(r['exp_type'])].append(r)
    if types:
        out['by_type'] = {t: _mean_jf(types[t]) for t in sorted(types)}
    return out


def format_rvos_table(summary: dict, title: str = 'RVOS') -> str:
    """Plain-text table (values in percent, 3 decimals) of a summary."""
    rows: List[tuple] = [('all', summary)]
    for a, v in summary.get('per_annotator', {}).items():
        rows.append((f'annotator {a}', v))
    for t, v in summary.get('by_type', {}).items():
        rows.append((f'type {t}', v))
    name_w = max(12, *(len(r[0]) for r in rows))
    header = (f'{"subset":<{name_w}} {"#exp":>6} {"J&F":>8} {"J":>8} '
              f'{"F":>8}')
    lines = [title, header, '-' * len(header)]
    for name, v in rows:
        lines.append(f'{name:<{name_w}} {v["num_expressions"]:>6d} '
                     f'{100 * v["J&F"]:>8.3f} {100 * v["J"]:>8.3f} '
                     f'{100 * v["F"]:>8.3f}')
    return '\n'.join(lines)

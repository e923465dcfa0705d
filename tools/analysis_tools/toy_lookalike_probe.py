"""Does a model tell a motion expression's target from its look-alike? (synthetic benchmark)

Every motion target of the synthetic benchmark (``tools/make_toy_dataset.py``) has a
look-alike: same colour, shape and size, different motion (``distractor`` in
``<split>/meta.json``); usually each of the two has its own motion expression. For every motion
expression whose target has a look-alike, this tool compares the best video-level score
(sigmoid averaged over the frames, the score the model ranks sequences by) among the query
sequences whose masks cover the target (mean IoU over the frames where it is annotated
> ``--iou-thr``) with the best among those covering the look-alike. The win rate of a model
that ignores motion is about 50 %; J&F mixes this choice with mask quality, the win rate does
not. ``--zero-motion-embed`` zeroes the temporal decoder's trajectory embedding first (its
output layer), to measure what that embedding contributes.

    python tools/analysis_tools/toy_lookalike_probe.py CONFIG CHECKPOINT [--split valid]
        [--data-root data/toy_rvos] [--max-exps N] [--zero-motion-embed] [--out probe.json]
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Optional

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def sequence_ious(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Mean IoU of each predicted mask sequence with one object's masks.

    Args:
        pred (np.ndarray): (T, Q, H, W) bool, query sequences' masks.
        gt (np.ndarray): (T, H, W) bool, the object's masks.

    Returns:
        np.ndarray: (Q,) IoU averaged over the frames where the object is present (zeros when
        it is present on none).
    """
    if pred.shape[0] != gt.shape[0] or pred.shape[2:] != gt.shape[1:]:
        raise ValueError(f'predicted masks {pred.shape} and ground truth {gt.shape} differ in '
                         'frames or size')
    from mmrvos.evaluation.functional import region_jaccard
    present = gt.reshape(len(gt), -1).any(1)
    if not present.any():
        return np.zeros(pred.shape[1])
    return np.array(
        [region_jaccard(gt[present], pred[present, q]).mean() for q in range(pred.shape[1])])


def best_covering_score(scores: np.ndarray, ious: np.ndarray, iou_thr: float) -> float:
    """Highest of the (Q,) ``scores`` among sequences whose (Q,) ``ious`` exceed ``iou_thr``;
    -inf when none covers the object."""
    covering = ious > iou_thr
    return float(scores[covering].max()) if covering.any() else float('-inf')


def summarise(rows: List[Dict]) -> Dict:
    """Win rate and mean scores of per-expression rows (``target``, ``lookalike`` scores)."""
    if not rows:
        raise ValueError('no motion expression with a look-alike was probed')
    t = np.array([r['target'] for r in rows])
    d = np.array([r['lookalike'] for r in rows])
    finite = np.isfinite(t) & np.isfinite(d)
    return dict(
        num_expressions=len(rows),
        win_rate=float((t > d).mean()),
        target_uncovered=int((~np.isfinite(t)).sum()),
        lookalike_uncovered=int((~np.isfinite(d)).sum()),
        mean_target_score=float(t[finite].mean()) if finite.any() else None,
        mean_lookalike_score=float(d[finite].mean()) if finite.any() else None)


def _object_masks(ann_dir: str, frames: List[str], obj_id: str) -> np.ndarray:
    """(T, H, W) bool masks of one object from the index PNGs of ``frames``."""
    from mmrvos.evaluation.functional import read_index_png
    return np.stack(
        [read_index_png(osp.join(ann_dir, f'{name}.png')) == int(obj_id) for name in frames])


def zero_motion_embed(model) -> None:
    """Zero the output layer of the temporal decoder's trajectory MLP (an error without one)."""
    decoder = getattr(getattr(model, 'temporal', None), 'temporal_decoder', None)
    mlp = getattr(decoder, 'motion_mlp', None)
    if mlp is None:
        raise ValueError('--zero-motion-embed: the model has no temporal decoder with a '
                         'trajectory embedding (motion_embed=True)')
    torch.nn.init.zeros_(mlp.layers[-1].weight)
    torch.nn.init.zeros_(mlp.layers[-1].bias)


def probe(model,
          cfg,
          data_root: str,
          split: str,
          iou_thr: float = 0.5,
          max_exps: Optional[int] = None) -> List[Dict]:
    """One row per motion expression with a look-alike: ids and the two best scores."""
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate

    meta_path = osp.join(data_root, split, 'meta.json')
    if not osp.isfile(meta_path):
        raise FileNotFoundError(f'{meta_path} not found: not a synthetic benchmark split '
                                '(python tools/make_toy_dataset.py DIR)')
    with open(meta_path) as f:
        objects = {vid: v['objects'] for vid, v in json.load(f)['videos'].items()}
    dcfg = cfg.test_dataloader.dataset.copy()
    dcfg.update(
        data_root=data_root,
        ann_file=f'meta_expressions/{split}/meta_expressions.json',
        meta_file=f'{split}/meta.json',
        data_prefix=dict(img=f'{split}/JPEGImages', ann=f'{split}/Annotations'))
    dataset = DATASETS.build(dcfg)
    model.test_cfg['select'] = 'all'
    rows = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        if info.get('exp_type') != 'motion':
            continue
        target = _target_id(info)
        lookalike = objects[info['video_id']][target].get('distractor')
        if lookalike is None:
            continue
        batch = model.data_preprocessor(pseudo_collate([dataset[i]]), False)
        with torch.no_grad():
            frames = model.predict(batch['inputs'], batch['data_samples'])[0].video_data_samples
        pred = np.stack([f.pred_instances.masks.cpu().numpy().astype(bool) for f in frames])
        scores = np.stack([f.pred_instances.scores.cpu().numpy() for f in frames]).mean(0)
        ann_dir = osp.join(data_root, split, 'Annotations', info['video_id'])
        row = dict(video_id=info['video_id'], exp_id=info['exp_id'], text=info['text'])
        for key, obj in (('target', target), ('lookalike', lookalike)):
            ious = sequence_ious(pred, _object_masks(ann_dir, info['frame_ids'], obj))
            row[key] = best_covering_score(scores, ious, iou_thr)
        rows.append(row)
        if max_exps is not None and len(rows) >= max_exps:
            break
    return rows


def _target_id(info: Dict) -> str:
    ids = info.get('obj_ids') or []
    if len(ids) != 1:
        raise ValueError(f'{info["video_id"]}/{info["exp_id"]}: expected one target object, '
                         f'got {ids}')
    return str(ids[0])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--data-root', default=osp.join(REPO, 'data', 'toy_rvos'))
    parser.add_argument('--split', default='valid', choices=['train', 'valid'])
    parser.add_argument('--iou-thr', type=float, default=0.5)
    parser.add_argument(
        '--max-exps', type=int, default=None, help='stop after this many probed expressions')
    parser.add_argument('--zero-motion-embed', action='store_true')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--out', help='write the rows and the summary to this JSON file '
        '(must not exist)')
    return parser.parse_args(argv)


def main(argv=None) -> Dict:
    args = parse_args(argv)
    if args.out and osp.exists(args.out):
        raise FileExistsError(f'{args.out} exists; choose another --out')
    sys.path.insert(0, REPO)
    from mmengine.registry import init_default_scope

    from mmrvos.apis import init_rvos_model
    init_default_scope('mmdet')
    model = init_rvos_model(args.config, args.checkpoint, device=args.device)
    if args.zero_motion_embed:
        zero_motion_embed(model)
    rows = probe(model, model.cfg, args.data_root, args.split, args.iou_thr, args.max_exps)
    summary = summarise(rows)
    print(f'{args.split}: {summary["num_expressions"]} motion expressions with a look-alike; '
          f'target scored above its look-alike in {100 * summary["win_rate"]:.1f} % '
          f'(target / look-alike uncovered: {summary["target_uncovered"]} / '
          f'{summary["lookalike_uncovered"]})')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(summary=summary, rows=rows), f, indent=1)
    return summary


if __name__ == '__main__':
    main()

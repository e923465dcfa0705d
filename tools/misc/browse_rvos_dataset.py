"""Write overlays of a few RVOS samples after the data pipeline (to check augmentation).

For each sample one PNG is written by ``RVOSLocalVisualizer`` (mmrvos's one visualizer): the T
frames of the clip side by side, each with the target's mask and box on valid frames, its frame
name / index and valid/annotated flags (``v``/``a``), under a banner with the sentence (after
any left/right swap of the flip).

Example::

    python tools/misc/browse_rvos_dataset.py configs/_base_/datasets/toy_rvos.py \
        --output-dir work_dirs/browse --num-samples 8
"""
import argparse
import os
import os.path as osp
import sys
from typing import Optional

import cv2
import numpy as np
from mmengine.config import DictAction


def render_sample(visualizer, inputs, sample, max_width: Optional[int] = None) -> np.ndarray:
    """Overlay of one packed sample.

    Args:
        visualizer (RVOSLocalVisualizer): draws the clip.
        inputs (Tensor): uint8 (T, 3, H, W) BGR.
        sample (TrackDataSample): packed data sample (ground truth drawn).

    Returns:
        np.ndarray: uint8 BGR image (banner + H, T * W, 3).
    """
    frames = [np.ascontiguousarray(f.permute(1, 2, 0).numpy()[..., ::-1]) for f in inputs]
    out = visualizer.draw_datasample(frames, sample, draw_gt=True, draw_pred=False)
    out = np.ascontiguousarray(out[..., ::-1])
    if max_width and out.shape[1] > max_width:
        scale = max_width / out.shape[1]
        out = cv2.resize(out, (max_width, int(out.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    return out


def parse_args():
    parser = argparse.ArgumentParser(description='Browse an RVOS dataset after its pipeline')
    parser.add_argument('config', help='config with train/val/test dataloaders')
    parser.add_argument('--split', choices=['train', 'val', 'test'], default='train')
    parser.add_argument('--output-dir', default='work_dirs/browse_rvos')
    parser.add_argument('--num-samples', type=int, default=6)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--max-width', type=int, default=2400)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. '
        'train_dataloader.dataset.data_root=data/toy_rvos/ (keys must exist; '
        '+key=value adds a new one)')
    return parser.parse_args()


def main():
    args = parse_args()
    from mmrvos.apis.config import init_scope, load_config, merge_cfg_options
    cfg = load_config(args.config, required=())
    merge_cfg_options(cfg, args.cfg_options)
    init_scope(cfg)
    from mmdet.registry import DATASETS
    if not isinstance(cfg.get(f'{args.split}_dataloader'), dict):
        raise ValueError(f'{args.config}: no {args.split}_dataloader')
    dataset = DATASETS.build(cfg[f'{args.split}_dataloader']['dataset'])
    from mmrvos.visualization import RVOSLocalVisualizer
    visualizer = RVOSLocalVisualizer.get_instance('browse_rvos_dataset')
    rng = np.random.RandomState(args.seed)
    np.random.seed(args.seed)
    os.makedirs(args.output_dir, exist_ok=True)
    num = min(args.num_samples, len(dataset))
    for idx in sorted(rng.choice(len(dataset), num, replace=False).tolist()):
        data = dataset[idx]
        sample = data['data_samples']
        image = render_sample(visualizer, data['inputs'], sample, args.max_width)
        name = f'{idx:05d}_{sample.video_id}_{sample.exp_id}.png'.replace('/', '_')
        cv2.imwrite(osp.join(args.output_dir, name), image)
        print(f'{name}: {sample.text!r} ({len(sample)} frames, '
              f'{int(sum(f.gt_instances.valid.item() for f in sample.video_data_samples))} '
              'valid)' if 'gt_instances' in sample.video_data_samples[0] else name)
    print(f'{num} overlays written to {args.output_dir}')


if __name__ == '__main__':
    from mmrvos.apis.cli import run_cli
    sys.exit(run_cli(main))

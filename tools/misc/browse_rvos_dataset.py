"""Write overlays of a few RVOS samples after the data pipeline (to check augmentation).

For each sample one PNG is written: the T frames of the clip side by side, the target mask
outlined on valid frames, its box (white), the frame name / index and valid/annotated flags, and the
sentence (after any left/right swap of the flip) above.

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

COLOUR = (0, 200, 255)  # BGR


def render_sample(inputs, sample, max_width: Optional[int] = None) -> np.ndarray:
    """Overlay of one packed sample.

    Args:
        inputs (Tensor): uint8 (T, 3, H, W) BGR.
        sample (TrackDataSample): packed data sample.

    Returns:
        np.ndarray: uint8 BGR image (banner + H, T * W, 3).
    """
    tiles = []
    for t, frame in enumerate(sample.video_data_samples):
        img = np.ascontiguousarray(inputs[t].permute(1, 2, 0).numpy()).copy()
        gt = frame.get('gt_instances')
        flags = ''
        if gt is not None:
            valid, annotated = bool(gt.valid.item()), bool(gt.annotated.item())
            flags = f' v{int(valid)} a{int(annotated)}'
            if valid:
                m = gt.masks.masks[0].astype(np.uint8)
                contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
                cv2.drawContours(img, contours, -1, COLOUR, 1)  # mask outline
                x1, y1, x2, y2 = [int(round(v)) for v in gt.bboxes[0].tolist()]
                cv2.rectangle(img, (x1 - 2, y1 - 2), (x2 + 1, y2 + 1), (255, 255, 255), 1)
        label = f'{frame.frame_id}#{frame.frame_index}{flags}'
        cv2.putText(img, label, (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1,
                    cv2.LINE_AA)
        tiles.append(img)
    strip = np.concatenate(tiles, axis=1)
    banner = np.zeros((22, strip.shape[1], 3), np.uint8)
    text = f'{sample.video_id}/{sample.exp_id} [{sample.exp_type}]: {sample.text}'
    cv2.putText(banner, text, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                cv2.LINE_AA)
    out = np.concatenate([banner, strip], axis=0)
    if max_width and out.shape[1] > max_width:
        scale = max_width / out.shape[1]
        out = cv2.resize(out, (max_width, int(out.shape[0] * scale)))
    return out


def parse_args():
    parser = argparse.ArgumentParser(description='Browse an RVOS dataset after its pipeline')
    parser.add_argument('config', help='config with train/val/test dataloaders')
    parser.add_argument('--split', choices=['train', 'val', 'test'], default='train')
    parser.add_argument('--output-dir', default='work_dirs/browse_rvos')
    parser.add_argument('--num-samples', type=int, default=6)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--max-width', type=int, default=2400)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
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
    rng = np.random.RandomState(args.seed)
    np.random.seed(args.seed)
    os.makedirs(args.output_dir, exist_ok=True)
    num = min(args.num_samples, len(dataset))
    for idx in sorted(rng.choice(len(dataset), num, replace=False).tolist()):
        data = dataset[idx]
        sample = data['data_samples']
        image = render_sample(data['inputs'], sample, args.max_width)
        name = f'{idx:05d}_{sample.video_id}_{sample.exp_id}.png'.replace('/', '_')
        cv2.imwrite(osp.join(args.output_dir, name), image)
        print(f'{name}: {sample.text!r} ({len(sample)} frames, '
              f'{int(sum(f.gt_instances.valid.item() for f in sample.video_data_samples))} '
              'valid)' if 'gt_instances' in sample.video_data_samples[0] else name)
    print(f'{num} overlays written to {args.output_dir}')


if __name__ == '__main__':
    from mmrvos.apis.cli import run_cli
    sys.exit(run_cli(main))

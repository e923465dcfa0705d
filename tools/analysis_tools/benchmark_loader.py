"""Data-loader throughput of an RVOS training pipeline, in clips/s.

By default it writes a synthetic dataset with 360p frames (640x360, the toy generator in the
Ref-YouTube-VOS layout) to a temporary directory and times the Ref-YouTube-VOS training
pipeline of ``configs/_base_/datasets/ref_youtube_vos.py`` (T=6 clips, decode + masks +
flip/resize/crop/photometric + packing) through a PyTorch DataLoader with 2 workers::

    python tools/analysis_tools/benchmark_loader.py
    python tools/analysis_tools/benchmark_loader.py --data-root data/ref-youtube-vos \
        --num-clips 200      # real data, dataset settings from the config
"""
import argparse
import os.path as osp
import sys
import tempfile
import time

from mmengine.config import DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args():
    parser = argparse.ArgumentParser(description='RVOS data loader benchmark')
    parser.add_argument(
        '--config', default=osp.join(REPO_ROOT, 'configs/_base_/datasets/ref_youtube_vos.py'))
    parser.add_argument(
        '--data-root', default=None, help='real dataset root; default: a synthetic 360p dataset')
    parser.add_argument('--num-frames', type=int, default=6, help='T')
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--num-clips', type=int, default=120, help='clips to time')
    parser.add_argument('--warmup', type=int, default=8, help='clips before timing')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=360)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def synthetic_dataset(root: str, width: int, height: int) -> dict:
    """Write a 360p toy dataset; returns the dataset config overrides that read it."""
    import mmrvos.datasets.synthetic.toy_generator as toy
    toy.make_toy_rvos(root, seed=0, num_train=12, num_valid=0, num_frames=24, size=(width, height))
    return dict(
        data_root=root,
        ann_file='meta_expressions/train/meta_expressions.json',
        meta_file='train/meta.json',
        sparse_annotations=False,
        data_prefix=dict(img='train/JPEGImages', ann='train/Annotations'))


def main():
    args = parse_args()
    from mmrvos.apis.config import load_config
    cfg = load_config(args.config, required=())
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    import mmrvos  # noqa: F401  (registration)
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.update(
        num_workers=args.workers, batch_size=args.batch_size, persistent_workers=args.workers > 0)
    pipeline = loader_cfg['dataset']['pipeline']
    for step in pipeline:
        if step['type'] == 'ClipSample':
            step['num_frames'] = args.num_frames
    tmp = None
    if args.data_root is None:
        tmp = tempfile.TemporaryDirectory(prefix='rvos_loader_bench_')
        loader_cfg['dataset'].update(synthetic_dataset(tmp.name, args.width, args.height))
        source = f'synthetic {args.width}x{args.height} frames'
    else:
        loader_cfg['dataset']['data_root'] = args.data_root
        source = args.data_root
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    clips, timed, frames, start = 0, 0, 0, None
    while timed < args.num_clips:
        for batch in loader:
            n = len(batch['inputs'])
            if start is not None:  # the clock starts after the warm-up batches
                timed += n
                frames += sum(x.shape[0] for x in batch['inputs'])
            clips += n
            if start is None and clips >= args.warmup:
                start = time.perf_counter()
            if timed >= args.num_clips:
                break
    elapsed = time.perf_counter() - start
    shape = tuple(batch['inputs'][0].shape)
    print(f'{source}; T={args.num_frames}; workers={args.workers}; '
          f'batch={args.batch_size}; last clip {shape}')
    print(f'{timed} clips in {elapsed:.2f} s: {timed / elapsed:.2f} clips/s, '
          f'{frames / elapsed:.1f} frames/s')
    if tmp is not None:
        tmp.cleanup()


if __name__ == '__main__':
    from mmrvos.apis.cli import run_cli
    sys.exit(run_cli(main))

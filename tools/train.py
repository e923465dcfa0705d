"""Train an mmrvos model with mmengine's Runner (mmdet conventions).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                                 [--auto-scale-lr] [--cfg-options k=v ...]
    bash tools/dist_train.sh CONFIG GPUS [args]      # torchrun, one process per GPU

A work dir belongs to one run. mmengine's CheckpointHook writes ``iter_<N>.pth`` /
``epoch_<N>.pth`` and ``last_checkpoint`` into it, replacing files of those names, and with
``max_keep_ckpts`` deletes older ones by name (their ids come from the resumed checkpoint).
So the tool refuses, unless ``--overwrite``: a fresh run in a work dir holding checkpoints,
and ``--resume CKPT`` of a checkpoint outside the work dir when the work dir holds
checkpoints (another run's). Errors print ``error: ...`` and exit with status 2.
"""
import argparse
import glob
import os.path as osp
import sys

from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmrvos.apis.cli import run_cli
from mmrvos.apis.run_config import (add_common_args, init_cpu_distributed, load_run_config,
                                    parse_with_rank)

RUN_FILES = ('*.pth', 'last_checkpoint')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train an mmrvos (RVOS) model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by (total batch) / auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from CKPT, or from the latest checkpoint in the work dir '
        'when no path is given')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='allow starting a fresh run, or resuming a checkpoint from '
        'elsewhere, in a work dir that holds checkpoints (they may be replaced '
        'or deleted)')
    add_common_args(parser)
    return parse_with_rank(parser, argv)


def build_cfg(args) -> Config:
    """Config of the run from the command line (see :func:`parse_args`)."""
    cfg = load_run_config(args)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise RuntimeError(f'{args.config} has no auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    existing = sorted(
        osp.basename(p) for pat in RUN_FILES for p in glob.glob(osp.join(cfg.work_dir, pat)))
    shown = ', '.join(existing[:4]) + (', ...' if len(existing) > 4 else '')
    if existing and not cfg.get('resume', False) and not args.overwrite:
        raise FileExistsError(
            f'work dir {cfg.work_dir} already holds checkpoints ({shown}); '
            'pass --resume to continue that run, --work-dir for a new one, or --overwrite '
            'to start over there.')
    if args.resume not in (None, 'auto'):
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume: checkpoint not found: {args.resume}')
        work = osp.realpath(cfg.work_dir)
        inside = osp.commonpath([osp.realpath(args.resume), work]) == work
        if existing and not inside and not args.overwrite:
            raise FileExistsError(
                f'work dir {cfg.work_dir} holds checkpoints of another run ({shown}); resuming '
                f'{args.resume} there would replace or delete them (iter_N.pth / epoch_N.pth, '
                'last_checkpoint, max_keep_ckpts). Resume into a new --work-dir, or pass '
                '--overwrite.')
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args)
    init_cpu_distributed(args.launcher)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()
    return runner


if __name__ == '__main__':
    sys.exit(run_cli(main))

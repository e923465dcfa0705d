"""Command-line plumbing shared by tools/train.py and tools/test.py (mmdet conventions)."""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction

from .config import init_scope, load_config, merge_cfg_options

CFG_OPTIONS_HELP = (
    'override config settings, e.g. train_cfg.max_iters=10 (list items by index: '
    'param_scheduler.1.end=100). A key must already exist in the config, so that a typo is an '
    'error; prefix a key with + to add a new one (+model.test_cfg.chunk_size=12)')


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--work-dir``, ``--cfg-options``, ``--launcher`` and ``--local-rank``."""
    parser.add_argument('--work-dir', help='the dir to save logs, checkpoints and metrics')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help=CFG_OPTIONS_HELP)
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_with_rank(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse, and export ``LOCAL_RANK`` when the launcher did not."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_run_config(args) -> Config:
    """The config of ``args.config`` with the launcher, ``--cfg-options`` and the work dir
    (``--work-dir``, else the config's, else ``./work_dirs/<config name>``) applied, and the
    config's registry scope set up. On a machine without CUDA a distributed launch uses gloo
    and DDP over CPU modules.

    Raises:
        FileNotFoundError / ValueError: not a config, or an unknown ``--cfg-options`` key
            (:func:`~mmrvos.apis.config.merge_cfg_options`).
    """
    cfg = load_config(args.config)
    cfg.launcher = args.launcher
    merge_cfg_options(cfg, args.cfg_options)
    init_scope(cfg)
    if args.work_dir is not None:
        if osp.exists(args.work_dir) and not osp.isdir(args.work_dir):
            raise FileExistsError(f'--work-dir {args.work_dir} is a file, not a folder')
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.launcher != 'none' and not torch.cuda.is_available():
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
        if cfg.get('model_wrapper_cfg') is None:
            cfg.model_wrapper_cfg = dict(
                type='MMDistributedDataParallel',
                device_ids=None,
                broadcast_buffers=False,
                find_unused_parameters=cfg.get('find_unused_parameters', False))
    return cfg


def init_cpu_distributed(launcher: str) -> None:
    """On a machine without CUDA, join the torchrun process group with gloo ourselves:
    mmengine's ``init_dist`` calls ``torch.cuda.set_device``, which a CPU build lacks, and it
    is skipped when a process group already exists."""
    import torch.distributed as dist
    if launcher == 'pytorch' and not torch.cuda.is_available() and not dist.is_initialized():
        dist.init_process_group(backend='gloo')

"""Evaluate an mmrvos model with mmengine's Runner (mmdet conventions).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl]
                         [--show-dir DIR] [--cfg-options k=v ...] [--launcher pytorch]
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [args]

``--out`` is refused when the file exists (``--overwrite`` replaces it). ``--show-dir DIR``
draws every expression's predicted masks, boxes and sentence on every frame
(:class:`~mmrvos.engine.hooks.RVOSVisualizationHook`) into
``WORK_DIR/TIMESTAMP/DIR/<video_id>/<exp_id>/<frame_id>.jpg`` (a new folder each run); an
absolute ``--show-dir`` that exists and is not empty is refused without ``--overwrite`` (files
of the same names would be replaced). Errors print ``error: ...`` and exit with status 2.
"""
import argparse
import os
import os.path as osp
import sys
import warnings

from mmengine.config import Config, ConfigDict
from mmengine.evaluator import DumpResults
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmrvos.apis.cli import run_cli
from mmrvos.apis.run_config import (add_common_args, init_cpu_distributed, load_run_config,
                                    parse_with_rank)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) an mmrvos model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump the raw predictions to this pickle file')
    parser.add_argument(
        '--show-dir',
        help='draw the predictions of every expression and '
        'frame into WORK_DIR/TIMESTAMP/SHOW_DIR/<video>/<expression>/')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='allow --out to replace an existing file, and an absolute '
        '--show-dir to write into a non-empty folder')
    # --no-strict (datasets + metric): see set_strict
    parser.add_argument(
        '--no-strict',
        dest='strict',
        action='store_false',
        help='leave expressions that cannot be scored out of the J&F with a '
        'warning giving their count (default: an error listing them)')
    add_common_args(parser)
    return parse_with_rank(parser, argv)


def set_strict(cfg: Config, strict: bool) -> None:
    """``--no-strict``: ``strict=False`` on the test dataset and the test metric(s)."""
    if strict:
        return
    cfg.test_dataloader.dataset.strict = False
    evaluators = cfg.test_evaluator
    for metric in evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]:
        metric.strict = False


def build_cfg(args) -> Config:
    cfg = load_run_config(args)
    set_strict(cfg, args.strict)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    cfg.load_from = args.checkpoint
    if args.show_dir:
        if (osp.isabs(args.show_dir) and osp.isdir(args.show_dir) and os.listdir(args.show_dir)
                and not args.overwrite):
            raise FileExistsError(f'--show-dir {args.show_dir} exists and is not empty; pass '
                                  '--overwrite or choose another folder')
        vis = video_visualization_hook(cfg)
        vis['draw'] = True
        vis['test_out_dir'] = args.show_dir
    return cfg


# mmdet's hooks read ``img_path`` from the clip itself and fail on video samples
IMAGE_VIS_HOOKS = ('DetVisualizationHook', 'TrackVisualizationHook')
SHARED_HOOK_KEYS = ('draw', 'interval', 'score_thr', 'show', 'wait_time', 'backend_args')


def video_visualization_hook(cfg: Config) -> ConfigDict:
    """``default_hooks.visualization`` as an ``RVOSVisualizationHook`` (the config's own
    settings kept); a config naming one of mmdet's image hooks gets ours, with a warning."""
    hooks = cfg.setdefault('default_hooks', ConfigDict())
    vis = hooks.get('visualization')
    kind = str((vis or {}).get('type', '')).rsplit('.', 1)[-1]
    if vis is None or kind in IMAGE_VIS_HOOKS:
        if vis is not None:
            warnings.warn(f'{cfg.filename}: default_hooks.visualization is mmdet\'s {kind}, '
                          'which cannot draw video clips; --show-dir uses '
                          'RVOSVisualizationHook instead')
        vis = ConfigDict(
            type='RVOSVisualizationHook',
            **{
                k: v
                for k, v in (vis or {}).items() if k in SHARED_HOOK_KEYS
            })
        hooks['visualization'] = vis
    return vis


def main(argv=None):
    args = parse_args(argv)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl/.pickle file, got {args.out}')
        if osp.exists(args.out) and not args.overwrite:
            raise FileExistsError(f'{args.out} exists; pass --overwrite to replace it')
    cfg = build_cfg(args)
    init_cpu_distributed(args.launcher)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if args.out is not None:
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    metrics = runner.test()
    return metrics


if __name__ == '__main__':
    sys.exit(run_cli(main))

"""Compare ReferDINO with its baselines, ReferFormer and MPG-SAM 2 on the synthetic benchmark.

Trains ReferDINO, G-DINO+SH, G-DINO+DH, ReferFormer and MPG-SAM 2 (tiny toy configs) with the
*same* budget (iterations, batch, optimiser, lr schedule, seed), evaluates each on the toy valid
split (J&F overall and by expression type, :class:`RVOSMetric`), measures the peak memory of
the deformable mask decoder vs the dynamic (CondInst) head at 900 queries and 360p, and
rewrites the block between ``<!-- comparison:start -->`` and ``<!-- comparison:end -->`` of
docs/en/comparison.md (created under "## Comparison systems" when absent).

    python tools/make_toy_dataset.py data/toy_rvos          # once
    python tools/analysis_tools/compare_systems.py --iters 40 [--num-eval 30]

Every system and every memory measurement runs in its own subprocess (clean registries and a
clean peak-RSS counter).
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SYSTEMS = {
    'ReferDINO': 'configs/referdino/referdino_tiny_1xb2_toy-rvos.py',
    'G-DINO+SH': 'configs/referdino/gdino-sh_tiny_1xb2_toy-rvos.py',
    'G-DINO+DH': 'configs/referdino/gdino-dh_tiny_1xb2_toy-rvos.py',
    'ReferFormer': 'projects/ReferFormer/configs/referformer_tiny_toy-rvos.py',
    'MPG-SAM 2': 'projects/MPG-SAM2/configs/mpg_sam2_tiny_toy-rvos.py',
}
START, END = '<!-- comparison:start -->', '<!-- comparison:end -->'
HEADING = '## Comparison systems'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train and compare RVOS systems on the toy '
                                     'benchmark; write docs/en/comparison.md')
    parser.add_argument(
        '--iters', type=int, default=40, help='training iterations per system (the shared budget)')
    parser.add_argument('--lr', type=float, default=2e-4)
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument(
        '--num-eval',
        type=int,
        default=None,
        help='evaluate on the first N valid expressions (default: all)')
    parser.add_argument('--systems', nargs='+', default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument('--data-root', default='data/toy_rvos/')
    parser.add_argument('--work-dir', default='work_dirs/compare_systems')
    parser.add_argument('--readme', default=osp.join(REPO, 'docs', 'en', 'comparison.md'))
    parser.add_argument('--no-readme', action='store_true', help='only print the block')
    parser.add_argument('--skip-train', action='store_true', help='memory figures only')
    parser.add_argument(
        '--reuse',
        action='store_true',
        help='reuse the result JSONs of a previous run in --work-dir when '
        'they were made with the same budget (re-renders the block)')
    parser.add_argument('--mem-queries', type=int, default=900)
    parser.add_argument(
        '--mem-size',
        type=int,
        nargs=2,
        default=[360, 640],
        metavar=('H', 'W'),
        help='input frame size of the memory test')
    parser.add_argument(
        '--mem-frames',
        type=int,
        default=1,
        help='frames per memory measurement (batch of F_seg maps)')
    # internal: one system / one head per subprocess
    parser.add_argument('--run-system', help=argparse.SUPPRESS)
    parser.add_argument('--run-head', help=argparse.SUPPRESS)
    parser.add_argument('--out', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.iters < 1:
        parser.error('--iters must be >= 1')
    return args


# ---------------------------------------------------------------------- one system
def train_and_test(name: str, args) -> dict:
    """Train one system for ``args.iters`` iterations and test it (in this process)."""
    sys.path.insert(0, REPO)
    from mmengine.config import Config
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    import mmrvos  # noqa: F401

    cfg = Config.fromfile(osp.join(REPO, SYSTEMS[name]))
    iters = args.iters
    cfg.work_dir = osp.join(args.work_dir, re.sub(r'[^A-Za-z0-9]+', '_', name))
    cfg.randomness = dict(seed=0)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
    cfg.optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=args.lr, weight_decay=1e-4),
        clip_grad=dict(max_norm=0.1, norm_type=2))
    warmup = max(1, min(100, iters // 5))
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=warmup)
    ]
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=iters + 1, save_last=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=max(1, iters // 4))
    cfg.default_hooks.visualization = dict(type='RVOSVisualizationHook', draw=False)
    cfg.log_processor = dict(by_epoch=False)
    cfg.custom_hooks = []
    # no validation during training (IterBasedTrainLoop validates at the last iteration)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    for split in ('train_dataloader', 'test_dataloader'):
        loader = cfg[split]
        loader.num_workers = 0
        loader.persistent_workers = False
        loader.dataset.data_root = args.data_root
    cfg.train_dataloader.batch_size = args.batch_size
    if args.num_eval:
        cfg.test_dataloader.dataset.indices = args.num_eval
    cfg.test_evaluator.data_root = args.data_root
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    start = time.time()
    runner.train()
    train_s = time.time() - start
    metrics = runner.test()
    return dict(
        system=name,
        config=SYSTEMS[name],
        iters=iters,
        num_eval=args.num_eval,
        train_s=train_s,
        metrics={
            k: float(v)
            for k, v in metrics.items()
        })


def _percent(metrics: dict) -> dict:
    """RVOSMetric results ('rvos/J&F' ... in [0, 1]) -> {'J&F': percent, ...}."""
    return {k.split('/')[-1]: 100.0 * v for k, v in metrics.items()}


# ---------------------------------------------------------------------- mask-head memory
def measure_head(kind: str, args) -> dict:
    """Peak extra RSS of one training step (forward + backward) of a mask head alone."""
    import resource

    import torch
    from mmdet.models.layers.transformer.utils import MLP
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import mmrvos  # noqa: F401

    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    heads = dict(
        deformable=dict(type='GroundingMaskDecoder', num_layers=3),
        dynamic=dict(
            type='RVOSDynamicMaskHead',
            embed_dims=256,
            in_channels=256,
            reduced_channels=8,
            dynamic_channels=8,
            num_dynamic_layers=3),
        static=dict(type='StaticMaskHead', embed_dims=256))
    head = MODELS.build(heads[kind])
    head.init_weights()
    pos_head = MLP(512, 256, 256, 2)
    h, w = args.mem_size
    b, q, length = args.mem_frames, args.mem_queries, 20
    queries = torch.randn(b, q, 256, requires_grad=True)
    boxes = torch.rand(b, q, 4).mul(0.5).add(0.25).requires_grad_()
    feats = torch.randn(b, 256, -(-h // 4), -(-w // 4), requires_grad=True)
    text = torch.randn(b, length, 256)
    text_pad = torch.zeros(b, length, dtype=torch.bool)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.time()
    masks = head(queries, boxes, feats, text, text_pad, None, None, query_pos_head=pos_head)
    masks.sigmoid().mean().backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(
        head=kind,
        type=heads[kind]['type'],
        queries=q,
        frames=b,
        input_hw=[h, w],
        mask_hw=list(masks.shape[-2:]),
        peak_extra_mib=(peak - base) / 1024.0,
        seconds=time.time() - start)


# ---------------------------------------------------------------------- driver
def _subprocess(flag: str, value: str, args, out: str) -> dict:
    cmd = [
        sys.executable,
        osp.abspath(__file__), flag, value, '--out', out, '--iters',
        str(args.iters), '--lr',
        str(args.lr), '--batch-size',
        str(args.batch_size), '--data-root', args.data_root, '--work-dir', args.work_dir,
        '--mem-queries',
        str(args.mem_queries), '--mem-frames',
        str(args.mem_frames), '--mem-size', *map(str, args.mem_size)
    ]
    if args.num_eval:
        cmd += ['--num-eval', str(args.num_eval)]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [REPO] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    if not (args.reuse and _reusable(out, args)):
        subprocess.run(cmd, check=True, cwd=REPO, env=env)
    with open(out) as f:
        return json.load(f)


def _reusable(path: str, args) -> bool:
    if not osp.exists(path):
        return False
    with open(path) as f:
        old = json.load(f)
    if 'system' not in old:
        return old.get('queries') == args.mem_queries and old.get('frames') == args.mem_frames \
            and old.get('input_hw') == list(args.mem_size)
    return old.get('iters') == args.iters and old.get('num_eval', args.num_eval) == args.num_eval


def format_block(runs, memory, args) -> str:
    """Markdown of the comparison (table by expression type + memory figures)."""
    lines = [START, '']
    if runs:
        runs = [dict(r, metrics=_percent(r['metrics'])) for r in runs]
        types = sorted({k[4:] for r in runs for k in r['metrics'] if k.startswith('J&F_')})
        evaluated = f'the first {args.num_eval} valid expressions' if args.num_eval \
            else 'all valid expressions'
        lines += [
            f'Produced by `python tools/analysis_tools/compare_systems.py --iters {args.iters}' +
            (f' --num-eval {args.num_eval}' if args.num_eval else '') + '` on the synthetic '
            f'toy benchmark (`tools/make_toy_dataset.py`): tiny configs trained from scratch on '
            f'CPU with the **same small budget** ({args.iters} iterations, batch '
            f'{args.batch_size}, AdamW lr {args.lr:g}, seed 0), evaluated on {evaluated}; '
            'training times are wall clock on a shared CPU. '
            'The budget is far too small for converged models: the numbers check that the '
            'four systems train and are scored by the same pipeline; they are not the '
            "papers' results.", '', 'Scores in %.', '', '| System | Config | J&F | J | F | ' +
            ' | '.join(f'J&F {t}' for t in types) + ' | train (s, wall clock) |',
            '|---|---|---|---|---|' + '---|' * len(types) + '---|'
        ]
        for r in runs:
            m = r['metrics']
            cells = [
                f"{m.get('J&F', float('nan')):.1f}", f"{m.get('J', float('nan')):.1f}",
                f"{m.get('F', float('nan')):.1f}"
            ]
            cells += [f"{m.get('J&F_' + t, float('nan')):.1f}" for t in types]
            lines.append(f"| {r['system']} | `{r['config']}` | " + ' | '.join(cells) +
                         f" | {r['train_s']:.0f} |")
        lines.append('')
    if memory:
        m0 = memory[0]
        lines += [
            f"Mask-head memory at {m0['queries']} queries and {m0['input_hw'][0]}x"
            f"{m0['input_hw'][1]} input (F_seg {m0['mask_hw'][0]}x{m0['mask_hw'][1]} at stride "
            f"4, {m0['frames']} frame, d=256), one forward + backward of the head alone on CPU; "
            'measured: the increase of the process peak RSS (`ru_maxrss`) over the step. '
            'Absolute values differ from the paper\'s GPU training figure (11.2 GB saved for '
            'the whole model over all decoder layers and clip frames).', '',
            '| Mask head | Type | Peak extra memory (MiB) | Step time (s) |', '|---|---|---|---|'
        ]
        names = dict(
            deformable='Deformable mask decoder (ReferDINO)',
            dynamic='Dynamic CondInst head (G-DINO+DH)',
            static='Static dot-product head (G-DINO+SH)')
        for m in memory:
            lines.append(f"| {names[m['head']]} | `{m['type']}` | {m['peak_extra_mib']:.0f} | "
                         f"{m['seconds']:.1f} |")
        by = {m['head']: m['peak_extra_mib'] for m in memory}
        if 'deformable' in by and 'dynamic' in by:
            lines += [
                '', f"Dynamic minus deformable: {by['dynamic'] - by['deformable']:.0f} MiB "
                f"({by['dynamic'] / max(by['deformable'], 1e-6):.1f}x)."
            ]
        lines.append('')
    lines.append(END)
    return '\n'.join(lines)


def write_readme(path: str, block: str) -> None:
    """Replace the marked block of ``path`` (append heading + markers when absent)."""
    text = open(path).read() if osp.exists(path) else ''
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip('\n') + f'\n\n{HEADING}\n\n{block}\n'
    with open(path, 'w') as f:
        f.write(text)


def main(argv=None):
    args = parse_args(argv)
    if args.run_system or args.run_head:
        result = train_and_test(args.run_system, args) if args.run_system \
            else measure_head(args.run_head, args)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)
        return result
    os.makedirs(args.work_dir, exist_ok=True)
    runs = []
    if not args.skip_train:
        if not osp.isdir(osp.join(REPO, args.data_root)) and not osp.isdir(args.data_root):
            raise FileNotFoundError(f'{args.data_root} not found: run tools/make_toy_dataset.py '
                                    f'{args.data_root} first')
        for name in args.systems:
            out = osp.join(args.work_dir, re.sub(r'[^A-Za-z0-9]+', '_', name) + '.json')
            runs.append(_subprocess('--run-system', name, args, out))
            print(f"{name}: {_percent(runs[-1]['metrics'])}", flush=True)
    memory = []
    for kind in ('deformable', 'dynamic', 'static'):
        out = osp.join(args.work_dir, f'memory_{kind}.json')
        memory.append(_subprocess('--run-head', kind, args, out))
        print(f"{kind}: {memory[-1]['peak_extra_mib']:.0f} MiB", flush=True)
    block = format_block(runs, memory, args)
    print(block)
    if not args.no_readme:
        write_readme(args.readme, block)
    return block


if __name__ == '__main__':
    main()

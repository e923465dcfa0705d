"""Speed, FLOPs and peak memory of ReferDINO inference, per query drop rate.

    # full Swin-T size (BERT-base-sized random text model built offline), 360p, T = 6
    python tools/analysis_tools/benchmark.py --drop-rates 0 0.15 0.3 0.5 --out bench.json
    # chunking: peak memory against video length with the tiny config
    python tools/analysis_tools/benchmark.py --config configs/_base_/models/referdino_tiny.py \\
        --frames 36 200 --drop-rates 0.5 --no-flops
    # against the official code (same weights, same clip, alternating; see
    # tools/analysis_tools/_official_speed.py)
    python tools/analysis_tools/benchmark.py --compare-official ../ReferDINO --drop-rates 0 0.5 \\
        --frames 6 [--bf16]

Every (drop rate, video length) point runs in a fresh subprocess so that its peak memory
(CPU: the process' max RSS; CUDA: ``torch.cuda.max_memory_allocated``) is its own. Weights are
random (seeded): speed and memory do not depend on them. Latency is the wall time of
``predict_video`` (backbone, encoder, pruning decoder, tracker, temporal decoder, masks for
the selected sequence) divided by the number of frames; FPS is its inverse. FLOPs are counted
with mmengine's ``FlopAnalyzer`` when it can trace the model, else with
``torch.utils.flop_counter`` (both reported as multiply-accumulates, the fvcore/mmengine
convention of "FLOPs"). One more run is timed per stage with forward hooks (backbone, neck,
encoder, pixel decoder | decoder, tracker, temporal decoder, mask decoder): it shows which part
of the time the number of queries, hence the drop rate, can change.
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(ROOT, 'configs', '_base_', 'models', 'referdino_swin-t.py')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Benchmark ReferDINO inference')
    p.add_argument('--config', default=DEFAULT_CONFIG)
    p.add_argument(
        '--bert',
        help='local BERT dir (default: a BERT-base-sized random model '
        'built once under ~/.cache/mmrvos/bert_base_random); ignored when the '
        'config already points to a local dir')
    p.add_argument('--drop-rates', type=float, nargs='+', default=[0.0, 0.15, 0.3, 0.5])
    p.add_argument('--frames', type=int, nargs='+', default=[6], help='video lengths T')
    p.add_argument('--size', type=int, nargs=2, default=[360, 640], metavar=('H', 'W'))
    p.add_argument('--repeat', type=int, default=2, help='timed runs (after one warm-up)')
    p.add_argument('--device', default='cuda' if _cuda() else 'cpu')
    p.add_argument('--chunk-size', type=int, help='override test_cfg.chunk_size (frames)')
    p.add_argument('--no-flops', action='store_true')
    p.add_argument(
        '--mask-queries',
        choices=['all', 'selected'],
        default='all',
        help="'all' (default, the official protocol): every surviving query of the "
        "last layer goes through the mask decoder; 'selected': only the chosen one")
    p.add_argument('--out', help='write the results as JSON (refuses to overwrite)')
    p.add_argument(
        '--compare-official',
        metavar='REPO',
        help='official ReferDINO checkout: time it against mmrvos instead '
        '(_official_speed.py)')
    p.add_argument(
        '--official-config',
        default='configs/ytvos_swint.yaml',
        help='official config (relative to REPO) for --compare-official')
    p.add_argument(
        '--frames-dir',
        default=osp.join(ROOT, '..', 'shared', 'fixtures', 'davis-judo', 'JPEGImages', 'judo'),
        help='frames for --compare-official (the first --frames of them)')
    p.add_argument(
        '--caption',
        default='a man in a white judo uniform',
        help='expression for --compare-official')
    p.add_argument('--threads', type=int, default=2, help='torch threads (--compare-official)')
    p.add_argument(
        '--bf16',
        action='store_true',
        help='--compare-official: also time mmrvos under bfloat16 autocast')
    p.add_argument('--single', help=argparse.SUPPRESS)  # internal: one point, JSON to stdout
    return p.parse_args(argv)


def _cuda():
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def bert_base_dir() -> str:
    """A BERT-base-sized random text model (config, tiny vocab, weights), built offline once."""
    out = osp.join(
        os.environ.get('XDG_CACHE_HOME', osp.expanduser('~/.cache')), 'mmrvos',
        'bert_base_random_30522')
    if not osp.isfile(osp.join(out, 'config.json')):
        subprocess.run([
            sys.executable,
            osp.join(ROOT, 'tools', 'misc',
                     'make_tiny_bert.py'), '--out', out, '--hidden-size', '768', '--layers', '12',
            '--heads', '12', '--intermediate-size', '3072', '--vocab-size', '30522'
        ],
                       check=True)
    return out


def referdino_config(config):
    """The config, loaded as the entry points do; refused unless its model is ReferDINO's."""
    from mmrvos.apis.config import load_config
    cfg = load_config(config)
    if 'decoder' not in cfg.model or 'language_model' not in cfg.model:
        raise ValueError(f'{config}: benchmark.py times ReferDINO (query pruning, '
                         f'predict_video); {cfg.model.type} is not one (time the projects with '
                         'tools/test.py or tools/analysis_tools/compare_systems.py)')
    return cfg


def build(config, drop_rate, bert, device, mask_queries='all', chunk_size=None):
    import torch
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    import mmrvos  # noqa: F401
    cfg = referdino_config(config)
    cfg.model.decoder.drop_rate = drop_rate
    cfg.model.test_cfg['mask_queries'] = mask_queries
    if chunk_size:
        cfg.model.test_cfg['chunk_size'] = chunk_size
    name = cfg.model.language_model.name
    if not osp.isdir(name):
        cfg.model.language_model.name = bert or bert_base_dir()
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.to(device).eval()


def count_flops(model, video, samples, text):
    """Multiply-accumulates of one ``predict_video`` call, and the counter used."""
    import torch

    class Wrapper(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            res = self.model.predict_video(x, samples, [text])
            return torch.stack([r.scores for r in res[0]])

    try:
        from mmengine.analysis import FlopAnalyzer
        analyzer = FlopAnalyzer(Wrapper(), (video, ))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return float(analyzer.total()), 'mmengine.analysis.FlopAnalyzer'
    except Exception as err:  # tracing a model with scipy / python control flow can fail
        from torch.utils.flop_counter import FlopCounterMode
        with FlopCounterMode(display=False) as counter:
            Wrapper()(video)
        return counter.get_total_flops() / 2.0, f'torch FlopCounterMode/2 ({type(err).__name__})'


# the stages of predict_video timed separately (module name -> label); the last four depend
# on the number of queries, the others do not (the text is encoded once, outside the timing)
STAGES = (('backbone', 'backbone'), ('neck', 'neck'), ('encoder', 'encoder'),
          ('pixel_decoder', 'pixel decoder'), ('decoder', 'decoder'),
          ('temporal.tracker', 'tracker'), ('temporal.temporal_decoder', 'temporal decoder'),
          ('bbox_head.mask_decoder', 'mask decoder'))
QUERY_STAGES = ('decoder', 'tracker', 'temporal decoder', 'mask decoder')


def time_stages(model, run, sync):
    """Seconds spent in each of :data:`STAGES` during ``run()`` (forward hooks)."""
    spent, handles = {}, []
    for name, label in STAGES:
        if not _has(model, name):
            continue
        module = model.get_submodule(name)

        def pre(mod, inputs, label=label):
            sync()
            mod._bench_t0 = time.perf_counter()

        def post(mod, inputs, output, label=label):
            sync()
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - mod._bench_t0

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    sync()
    t0 = time.perf_counter()
    run()
    sync()
    total = time.perf_counter() - t0
    for h in handles:
        h.remove()
    spent['other'] = max(0.0, total - sum(spent.values()))
    return spent


def _has(model, name):
    try:
        return model.get_submodule(name) is not None
    except AttributeError:
        return False


def run_single(args, point):
    import torch
    from mmdet.structures import DetDataSample
    drop, frames = point['drop_rate'], point['frames']
    h, w = args.size
    model = build(args.config, drop, args.bert, args.device, args.mask_queries, args.chunk_size)
    pad_h, pad_w = (h + 31) // 32 * 32, (w + 31) // 32 * 32
    samples = [
        DetDataSample(
            metainfo=dict(img_shape=(h, w), ori_shape=(h, w), batch_input_shape=(pad_h, pad_w)))
        for _ in range(frames)
    ]
    torch.manual_seed(1)
    video = torch.zeros(frames, 3, pad_h, pad_w, device=args.device)
    video[:, :, :h, :w] = torch.randn(frames, 3, h, w, device=args.device)
    sync = torch.cuda.synchronize if args.device.startswith('cuda') else (lambda: None)
    with torch.no_grad():
        text = model.encode_text(['the person on the left riding a bike'])
        model.predict_video(video, samples, [text])  # warm-up
        if args.device.startswith('cuda'):
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(args.repeat):
            sync()
            t0 = time.perf_counter()
            model.predict_video(video, samples, [text])
            sync()
            times.append(time.perf_counter() - t0)
        stages = time_stages(model, lambda: model.predict_video(video, samples, [text]), sync)
        flops, counter = (None, None)
        if not args.no_flops:
            flops, counter = count_flops(model, video, samples, text)
    best = min(times)
    if args.device.startswith('cuda'):
        peak = torch.cuda.max_memory_allocated() / 2**20
        peak_kind = 'cuda max allocated'
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        peak_kind = 'cpu max RSS'
    return dict(
        drop_rate=drop,
        frames=frames,
        size=[h, w],
        device=args.device,
        mask_queries=args.mask_queries,
        chunk_size=model.test_cfg['chunk_size'],
        seconds=best,
        latency_ms_per_frame=1000 * best / frames,
        fps=frames / best,
        gflops_per_frame=None if flops is None else flops / 1e9 / frames,
        flop_counter=counter,
        peak_mib=peak,
        peak_kind=peak_kind,
        queries_last_layer=model.decoder.query_counts(model.num_queries)[-1],
        stages_ms_per_frame={
            k: 1000 * v / frames
            for k, v in stages.items()
        },
        torch_threads=torch.get_num_threads())


def main(argv=None):
    args = parse_args(argv)
    if args.single:
        print('RESULT ' + json.dumps(run_single(args, json.loads(args.single))))
        return
    if args.out and osp.exists(args.out):
        raise FileExistsError(f'{args.out} exists; choose another --out')
    referdino_config(args.config)  # before any subprocess: a clear error here
    if args.compare_official:
        sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
        from _official_speed import compare
        return compare(args)
    results = []
    for frames in args.frames:
        for drop in args.drop_rates:
            point = json.dumps(dict(drop_rate=drop, frames=frames))
            cmd = [sys.executable, osp.abspath(__file__), '--single', point, '--config',
                   args.config, '--size', *map(str, args.size), '--repeat', str(args.repeat),
                   '--device', args.device] + (['--no-flops'] if args.no_flops else []) + \
                ['--mask-queries', args.mask_queries] + \
                (['--chunk-size', str(args.chunk_size)] if args.chunk_size else []) + \
                (['--bert', args.bert] if args.bert else [])
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
            if proc.returncode != 0 or not line:
                raise RuntimeError(f'benchmark point {point} failed:\n{proc.stderr[-3000:]}')
            res = json.loads(line[-1][len('RESULT '):])
            results.append(res)
            print(
                f'T={frames:4d} drop={drop:.2f}: {res["latency_ms_per_frame"]:9.1f} ms/frame '
                f'{res["fps"]:7.2f} FPS  ' + ('' if res['gflops_per_frame'] is None else
                                              f'{res["gflops_per_frame"]:8.1f} GFLOPs/frame  ') +
                f'peak {res["peak_mib"]:8.0f} MiB ({res["peak_kind"]})',
                flush=True)
    base = {r['frames']: r for r in results if r['drop_rate'] == 0.0}
    print(f'\n{"T":>4} {"drop":>5} {"ms/frame":>10} {"FPS":>8} {"speed-up":>9} '
          f'{"GFLOPs/frame":>13} {"peak MiB":>9}')
    for r in results:
        ref = base.get(r['frames'])
        speed = f'{r["fps"] / ref["fps"]:.2f}x' if ref else '-'
        gf = '-' if r['gflops_per_frame'] is None else f'{r["gflops_per_frame"]:.1f}'
        print(f'{r["frames"]:>4} {r["drop_rate"]:>5.2f} {r["latency_ms_per_frame"]:>10.1f} '
              f'{r["fps"]:>8.2f} {speed:>9} {gf:>13} {r["peak_mib"]:>9.0f}')
    labels = [label for _, label in STAGES] + ['other']
    print('\nper stage (ms/frame; one extra run timed with forward hooks): ' +
          ', '.join(f'{lab}' for lab in labels))
    for r in results:
        st = r['stages_ms_per_frame']
        per_q = sum(st.get(k, 0.0) for k in QUERY_STAGES)
        fixed = sum(v for k, v in st.items() if k not in QUERY_STAGES)
        print(f'T={r["frames"]:4d} drop={r["drop_rate"]:.2f}: ' +
              ' '.join(f'{lab}={st.get(lab, 0.0):.1f}' for lab in labels) +
              f' | query-dependent {per_q:.1f}, query-independent {fixed:.1f}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(
                dict(config=args.config, mask_queries=args.mask_queries, results=results),
                f,
                indent=2)
        print(f'wrote {args.out}')


if __name__ == '__main__':
    from mmrvos.apis.cli import run_cli
    sys.exit(run_cli(main))

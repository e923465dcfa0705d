"""What streaming costs in accuracy: J&F offline (``predict_video`` over the whole video) and
streaming (:class:`~mmrvos.apis.RVOSStream`) for several temporal windows W (and delays D), on
the synthetic benchmark's valid split and on the judo fixture: not a unit test.

    python tools/analysis_tools/stream_accuracy.py --checkpoint CKPT \\
        [--config configs/referdino/referdino_tiny_1xb3-ft_toy-rvos.py] \\
        [--data-root data/toy_rvos] [--judo ../shared/fixtures/davis-judo] \\
        [--windows 1 3 6 12] [--delays 0 2 4] [--markdown table.md] [--json rows.json]

Both paths read the frames through the config's test pipeline; the offline one is what
``tools/test.py`` and ``tools/demo.py`` run (all expressions of a video at once). J and F
are the DAVIS definitions (:class:`RVOSMetric`: only annotated frames count, the mean over
expressions; the toy split also per expression type). Prints a Markdown table, one row per
method: J&F (J / F) in % and the difference to offline in points [brackets].
"""
import argparse
import json
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join('configs', 'referdino', 'referdino_tiny_1xb3-ft_toy-rvos.py')
JUDO = osp.normpath(osp.join(ROOT, '..', 'shared', 'fixtures', 'davis-judo'))


def datasets(args) -> list:
    """(name, data_root, meta file, frame folder of a video, annotation folder) per dataset."""
    out = []
    if args.data_root:
        out.append(
            dict(
                name='toy valid',
                root=args.data_root,
                meta='meta_expressions/valid/meta_expressions.json',
                frames='valid/JPEGImages',
                ann='valid/Annotations'))
    if args.judo:
        out.append(
            dict(
                name='judo',
                root=args.judo,
                meta='meta_expressions.json',
                frames='JPEGImages',
                ann='Annotations'))
    for d in out:
        meta = osp.join(d['root'], d['meta'])
        if not osp.isfile(meta):
            raise FileNotFoundError(f'{d["name"]}: no {meta} (the toy split: python '
                                    'tools/make_toy_dataset.py data/toy_rvos, or make demo)')
    return out


def frame_paths(d: dict, video: str, frames: list) -> list:
    folder = osp.join(d['root'], d['frames'], video)
    paths = []
    for name in frames:
        for ext in ('.jpg', '.jpeg', '.png'):
            if osp.isfile(osp.join(folder, name + ext)):
                paths.append(osp.join(folder, name + ext))
                break
        else:
            raise FileNotFoundError(f'{folder}: no frame {name}')
    return paths


def sample(video, exp_id, frame, path, mask) -> dict:
    """One frame's prediction in the form :class:`RVOSMetric` reads."""
    return dict(
        video_id=video,
        exp_id=exp_id,
        frame_id=frame,
        img_path=path,
        ori_shape=mask.shape,
        pred_instances=dict(masks=mask[None]))


def evaluate(args) -> list:
    import torch
    from mmengine.logging import MMLogger

    from mmrvos.apis import RVOSStream, build_video_pipeline, init_rvos_model, segment_video
    from mmrvos.evaluation.metrics import RVOSMetric
    MMLogger.get_current_instance().setLevel('WARNING')  # the metric's own tables
    torch.set_num_threads(args.threads)
    model = init_rvos_model(args.config, args.checkpoint, device=args.device)
    pipeline = build_video_pipeline(model.cfg)
    methods = ['offline'] + [name for name, _, _ in stream_methods(args)]
    rows = []
    for d in datasets(args):
        meta = json.load(open(osp.join(d['root'], d['meta'])))['videos']
        metrics = {
            m: RVOSMetric(data_root=d['root'], meta_file=d['meta'], ann_dir=d['ann'])
            for m in methods
        }
        t0 = time.time()
        videos = sorted(meta.items())[:args.max_videos]
        for v, (video, info) in enumerate(videos):
            exp_ids = sorted(info['expressions'], key=lambda k: int(k) if k.isdigit() else k)
            texts = [info['expressions'][k]['exp'] for k in exp_ids]
            paths = frame_paths(d, video, info['frames'])
            preds = {m: [[] for _ in exp_ids] for m in methods}

            def offline(res):
                for e, mask in enumerate(res['masks']):
                    name = info['frames'][res['index']]
                    preds['offline'][e].append(
                        sample(video, exp_ids[e], name, paths[res['index']], mask))

            segment_video(model, paths, texts, offline, pipeline=pipeline)
            for method, w, delay in stream_methods(args):
                stream = RVOSStream(
                    model, texts, window=w, delay=delay, pipeline=pipeline, video_id=video)
                outputs = [stream.step(path, name) for name, path in zip(info['frames'], paths)]
                for frame in [o for o in outputs if o is not None] + stream.flush():
                    for e, res in enumerate(frame):
                        path = paths[res['index']]
                        preds[method][e].append(
                            sample(video, exp_ids[e], res['frame'], path, res['mask']))
            for m in methods:
                for samples in preds[m]:
                    metrics[m].process_video(samples)
            print(
                f'{d["name"]}: {v + 1}/{len(videos)} videos ({time.time() - t0:.0f} s)',
                file=sys.stderr,
                flush=True)
        for m in methods:
            scores = metrics[m].compute_metrics(metrics[m].results)
            rows.append(dict(dataset=d['name'], method=m, **scores))
    return rows


def stream_methods(args) -> list:
    """(name, window, delay) of every streaming setting measured: each ``--windows`` W with
    delay 0, then each ``--delays`` D > 0 with each window W > D."""
    out = [(f'W={w}', w, 0) for w in args.windows]
    out += [(f'W={w}, D={d}', w, d) for d in args.delays if d > 0 for w in args.windows if w > d]
    return out


def markdown(rows: list) -> str:
    """One row per method: J&F (J / F) in % per dataset (and toy expression type), with the
    difference to offline in points [brackets]."""
    methods = list(dict.fromkeys(r['method'] for r in rows))
    names = list(dict.fromkeys(r['dataset'] for r in rows))
    by = {(r['dataset'], r['method']): r for r in rows}
    columns = []
    for name in names:
        off = by[(name, 'offline')]
        columns += [(name, 'J&F')] + [(name, k) for k in sorted(off) if k.startswith('J&F_')]
    head = ['method'] + [n if k == 'J&F' else f'{n}, {k[4:]}' for n, k in columns]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for m in methods:
        cells = [m]
        for name, key in columns:
            row, off = by.get((name, m), {}), by[(name, 'offline')]
            if row.get(key) is None:
                cells.append('-')
                continue
            cell = f'{100 * row[key]:.1f}'
            if key == 'J&F':
                cell += f' ({100 * row["J"]:.1f} / {100 * row["F"]:.1f})'
            if m != 'offline':
                cell += f' [{100 * (row[key] - off[key]):+.1f}]'
            cells.append(cell)
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='J&F offline vs streaming for several windows')
    p.add_argument('--config', default=DEFAULT_CONFIG)
    p.add_argument('--checkpoint', required=True)
    p.add_argument(
        '--data-root',
        default=osp.join('data', 'toy_rvos'),
        help="the synthetic benchmark ('' to skip)")
    p.add_argument('--judo', default=JUDO, help="the judo fixture ('' to skip)")
    p.add_argument('--windows', type=int, nargs='+', default=[1, 3, 6, 12])
    p.add_argument(
        '--delays',
        type=int,
        nargs='+',
        default=[0],
        help='also stream with these delays D (each window W > D)')
    p.add_argument('--max-videos', type=int, help='only the first N videos of each dataset')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=1, help='torch threads (default 1)')
    p.add_argument('--markdown', help='also write the table to this file')
    p.add_argument('--json', help='write the rows to this file')
    args = p.parse_args(argv)
    if any(w < 1 for w in args.windows):
        p.error('--windows must be positive')
    if any(d < 0 for d in args.delays):
        p.error('--delays must be >= 0')
    return args


def main(argv=None):
    args = parse_args(argv)
    rows = evaluate(args)
    table = markdown(rows)
    print(table)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write(table + '\n')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == '__main__':
    from mmrvos.apis.cli import run_cli
    sys.exit(run_cli(main))

"""The main job end to end (``make demo``).

1. generates the synthetic benchmark (``data/toy_rvos``, deterministic, seed 0, 2048 train and
   20 valid videos) if absent, and refuses a folder that holds a different one;
2. stage 1 (shared): trains the tiny ReferDINO on single frames of the static and spatial
   expressions (``referdino_tiny_1xb8-1f_toy-rvos.py``), as the paper pre-trains on images;
3. stage 2: from that checkpoint, trains on clips (``referdino_tiny_1xb3-ft_toy-rvos.py``:
   query decoder, heads, pixel decoder and temporal enhancer; frame features frozen) for a
   fixed budget of iterations, once with the temporal enhancer and once without it (tracker +
   temporal decoder off): both runs get the same stage 1 and the same stage-2 budget;
4. evaluates both on the valid split: J&F overall and by expression type (static / spatial /
   motion), and plots the learning curve (loss and J&F against iteration) to a PNG;
5. renders overlay GIFs of a few valid expressions with the trained model;
6. runs ``tools/demo.py`` on the real DAVIS ``judo`` frames beside the repository;
7. prints the numbers and where the outputs are (``outputs/demo/<timestamp>/summary.json``).

    python tools/misc/run_demo.py [--frame-iters 1000] [--clip-iters 300] [--out outputs/demo]

Every run writes into a new timestamped folder (nothing is overwritten).
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import re
import sys
import time

from mmrvos.datasets.synthetic.toy_generator import (NUM_TRAIN_VIDEOS, NUM_VALID_VIDEOS,
                                                     make_toy_rvos)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'referdino', 'referdino_tiny_1xb3-ft_toy-rvos.py')
FRAME_CONFIG = osp.join(ROOT, 'configs', 'referdino', 'referdino_tiny_1xb8-1f_toy-rvos.py')
DATA = osp.join(ROOT, 'data', 'toy_rvos')
NUM_TRAIN, NUM_VALID = NUM_TRAIN_VIDEOS, NUM_VALID_VIDEOS  # what the recipe was tuned on
JUDO = osp.normpath(osp.join(ROOT, '..', 'shared', 'fixtures', 'davis-judo'))


def _tool(name):
    spec = importlib.util.spec_from_file_location(f'mmrvos_{name}_cli',
                                                  osp.join(ROOT, 'tools', f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def train(config, work_dir, iters, eval_points, extra=()):
    """Train ``config`` with tools/train.py in this process for ``iters`` iterations (the
    learning rate drops 10x at 7/8 of them); return the runner."""
    interval = max(1, iters // max(eval_points, 1))
    # a visualizer of its own per run: mmengine's visualizer is a named singleton whose
    # backend would otherwise keep writing into the first run's folder
    vis_name = 'visualizer_' + re.sub(r'[^a-zA-Z0-9]+', '_', work_dir)
    args = [
        config, '--work-dir', work_dir, '--cfg-options', f'train_cfg.max_iters={iters}',
        f'visualizer.name={vis_name}', f'train_cfg.val_interval={interval}',
        'train_dataloader.num_workers=1', 'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False', f'default_hooks.checkpoint.interval={iters}',
        f'param_scheduler.1.end={iters}', f'param_scheduler.1.milestones=[{iters * 7 // 8}]', *extra
    ]
    return _tool('train').main(args)


def read_curve(work_dir):
    """(iteration, loss) and (iteration, J&F, by type) points from the run's scalars.json."""
    logs = sorted(
        (osp.join(dp, f) for dp, _, fs in os.walk(work_dir) for f in fs if f == 'scalars.json'),
        key=osp.getmtime)
    if not logs:
        raise FileNotFoundError(f'no scalars.json under {work_dir}: the run logged nothing')
    losses, evals = [], []
    for line in open(logs[-1]):
        rec = json.loads(line)
        if 'loss' in rec and 'iter' in rec:
            losses.append((rec['iter'], rec['loss']))
        if 'rvos/J&F' in rec:
            evals.append((rec['step'], {
                k.split('rvos/')[-1]: v
                for k, v in rec.items() if k.startswith('rvos/')
            }))
    return losses, evals


def plot_curves(curves, path):
    """Loss and J&F against iteration; ``curves`` maps a name to (losses, evals, offset),
    the offset being where the run starts on the shared iteration axis."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax_loss, ax_jf) = plt.subplots(1, 2, figsize=(11, 4))
    for name, (losses, evals, offset) in curves.items():
        if losses:
            ax_loss.plot([offset + i for i, _ in losses], [v for _, v in losses], label=name)
        if evals:
            steps = [offset + s for s, _ in evals]
            ax_jf.plot(steps, [100 * e['J&F'] for _, e in evals], 'o-', label=f'{name} (all)')
            if 'J&F_motion' in evals[0][1]:
                ax_jf.plot(
                    steps, [100 * e['J&F_motion'] for _, e in evals],
                    'x--',
                    label=f'{name} (motion)')
    ax_loss.set(xlabel='iteration', ylabel='total loss', yscale='log', title='training loss')
    ax_jf.set(xlabel='iteration', ylabel='J&F (%)', title='valid J&F', ylim=(0, 100))
    ax_loss.legend(fontsize=8)
    ax_jf.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def render_examples(model, run_dir, num=3):
    """Overlay GIFs of one valid expression per type (static, spatial, motion)."""
    from mmrvos.apis import inference_rvos, load_video
    from mmrvos.visualization import OverlayVideoWriter, RVOSLocalVisualizer
    visualizer = RVOSLocalVisualizer.get_instance('run_demo_examples')
    meta = json.load(open(osp.join(DATA, 'meta_expressions', 'valid',
                                   'meta_expressions.json')))['videos']
    picked, written = set(), []
    for vid, info in meta.items():
        for exp in info['expressions'].values():
            kind = exp.get('exp_type')
            if kind in picked or len(written) >= num:
                continue
            picked.add(kind)
            frames_dir = osp.join(DATA, 'valid', 'JPEGImages', vid)
            res = inference_rvos(model, frames_dir, [exp['exp']], scale=(192, 128))[0]
            frames, _ = load_video(frames_dir)
            path = osp.join(run_dir, f'{kind}_{vid}.gif')
            writer = OverlayVideoWriter(path, len(frames), fps=4)
            for frame, mask, box in zip(frames, res['masks'], res['boxes']):
                writer.add(
                    visualizer.draw_frame(frame[..., ::-1], [mask], [box],
                                          [f'[{kind}] {exp["exp"]}']))
            writer.close()
            written.append(path)
    return written


def _slug(name):
    return re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')


def count_videos(root, split):
    """Number of videos of a generated split (None when the split is absent)."""
    path = osp.join(root, 'meta_expressions', split, 'meta_expressions.json')
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return len(json.load(f)['videos'])


def prepare_data(root):
    """Generate the benchmark the recipe expects (seed 0, NUM_TRAIN train and NUM_VALID valid
    videos) if absent; refuse a folder holding a different benchmark instead of mixing them."""
    found = (count_videos(root, 'train'), count_videos(root, 'valid'))
    if found == (None, None) and not (osp.isdir(root) and os.listdir(root)):
        print(f'[demo] generating the synthetic benchmark in {root}', flush=True)
        make_toy_rvos(root, seed=0, num_train=NUM_TRAIN, num_valid=NUM_VALID)
    elif found != (NUM_TRAIN, NUM_VALID):
        what = 'files but no toy benchmark' if found == (None, None) else \
            f'a toy benchmark with {found[0]} train / {found[1]} valid videos'
        raise RuntimeError(
            f'{root} holds {what}; the '
            f'demo recipe uses {NUM_TRAIN} / {NUM_VALID} (seed 0). Move that folder away, or '
            f'regenerate it: python tools/make_toy_dataset.py {root} --seed 0 '
            f'--num-train {NUM_TRAIN} --num-valid {NUM_VALID} (deterministic; the first videos '
            f'are byte-identical for any --num-train)')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--frame-iters',
        type=int,
        default=1000,
        help='stage-1 (single-frame) iterations, shared by both runs')
    parser.add_argument(
        '--clip-iters', type=int, default=300, help='stage-2 (clip) iterations per run')
    parser.add_argument(
        '--eval-points',
        type=int,
        default=2,
        help='valid evaluations per stage-2 run (learning curve points)')
    parser.add_argument('--out', default=osp.join(ROOT, 'outputs', 'demo'))
    parser.add_argument('--skip-ablation', action='store_true')
    parser.add_argument(
        '--seed',
        type=int,
        default=None,
        help="random seed of every run (default: the configs' seed, 0); "
        'from-scratch runs on this budget vary by several points between seeds')
    args = parser.parse_args()
    seeded = [] if args.seed is None else [f'randomness.seed={args.seed}']
    t_start = time.time()
    run_dir = osp.join(args.out, time.strftime('%Y%m%d-%H%M%S'))
    os.makedirs(run_dir, exist_ok=False)

    prepare_data(DATA)

    results, curves, runners = {}, {}, {}
    stage1 = 'stage 1: frames (shared)'
    work = osp.join(run_dir, 'stage1_frames')
    print(f'[demo] {stage1}: {args.frame_iters} iterations -> {work}', flush=True)
    t0 = time.time()
    train(FRAME_CONFIG, work, args.frame_iters, 1, seeded)
    losses, evals = read_curve(work)
    curves[stage1] = (losses, evals, 0)
    results[stage1] = dict(
        minutes=(time.time() - t0) / 60,
        work_dir=work,
        **{
            k: round(100 * v, 2)
            for k, v in evals[-1][1].items()
        })
    stage1_ckpt = osp.join(work, f'iter_{args.frame_iters}.pth')

    runs = {'ReferDINO': [], 'w/o temporal enhancer': ['model.temporal_enhancer=None']}
    if args.skip_ablation:
        runs.pop('w/o temporal enhancer')
    for name, extra in runs.items():
        work = osp.join(run_dir, 'stage2_' + _slug(name))
        print(
            f'[demo] stage 2, {name}: {args.clip_iters} iterations from {stage1_ckpt} -> '
            f'{work}',
            flush=True)
        t0 = time.time()
        runners[name] = train(CONFIG, work, args.clip_iters, args.eval_points,
                              [f'load_from={stage1_ckpt}', *seeded, *extra])
        losses, evals = read_curve(work)
        curves[name] = (losses, evals, args.frame_iters)
        final = evals[-1][1] if evals else {}
        results[name] = dict(
            minutes=(time.time() - t0) / 60,
            work_dir=work,
            **{
                k: round(100 * v, 2)
                for k, v in final.items()
            })
    curve_png = plot_curves(curves, osp.join(run_dir, 'learning_curve.png'))

    model = runners['ReferDINO'].model.eval()
    gifs = render_examples(model, run_dir)
    judo_out = None
    if osp.isdir(JUDO):
        judo_out = osp.join(run_dir, 'judo')
        ckpt = osp.join(results['ReferDINO']['work_dir'], f'iter_{args.clip_iters}.pth')
        _tool('demo').main([
            osp.join(JUDO, 'JPEGImages',
                     'judo'), '--text', 'the two judokas grappling in the middle of the mat',
            '--text', 'the person kneeling on the red mat at the left', '--config', CONFIG,
            '--checkpoint', ckpt, '--out-dir', judo_out
        ])
    summary = dict(
        frame_iterations=args.frame_iters,
        clip_iterations=args.clip_iters,
        seed=runners['ReferDINO'].cfg.get('randomness', {}).get('seed'),
        results=results,
        learning_curve=curve_png,
        overlays=gifs,
        judo_demo=judo_out,
        minutes=(time.time() - t_start) / 60)
    with open(osp.join(run_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)

    print('\n[demo] synthetic benchmark, valid split, J&F (%): stage 1 '
          f'{args.frame_iters} iterations on frames, then {args.clip_iters} on clips per run '
          f'(seed {summary["seed"]}):')
    print(f'{"run":<26} {"all":>7} {"static":>7} {"spatial":>8} {"motion":>7} {"min":>6}')
    for name, r in results.items():
        print(f'{name:<26} {r.get("J&F", float("nan")):>7.2f} '
              f'{r.get("J&F_static", float("nan")):>7.2f} '
              f'{r.get("J&F_spatial", float("nan")):>8.2f} '
              f'{r.get("J&F_motion", float("nan")):>7.2f} {r["minutes"]:>6.1f}')
    print(f'[demo] learning curve: {curve_png}')
    for g in gifs:
        print(f'[demo] overlay: {g}')
    if judo_out:
        print(f'[demo] judo demo (masks, overlay.gif, results.json): {judo_out}')
    print(f'[demo] summary: {osp.join(run_dir, "summary.json")} '
          f'({summary["minutes"]:.1f} min in all)')


if __name__ == '__main__':
    sys.exit(main())

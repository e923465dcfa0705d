"""Speed of mmrvos' ReferDINO against the official code: same weights, same clip, alternating.

    python tools/analysis_tools/benchmark.py --compare-official ../ReferDINO \\
        [--official-config configs/ytvos_swint.yaml] [--drop-rates 0 0.5] \\
        [--frames-dir ../shared/fixtures/davis-judo/JPEGImages/judo] [--frames 6] \\
        [--repeat 3] [--threads 2] [--bf16] [--out bench_official.json]

For each drop rate both models are built as ``tools/analysis_tools/official_parity.py`` builds
them (the official model from its own code and config, random weights with non-zero LoRA B,
converted to mmrvos and loaded strictly), the first ``--frames`` frames are preprocessed once
as the official evaluation does (short side 360, no padding), and then ``--repeat`` rounds
time, in turn, the official ``infer`` and mmrvos' ``predict_video`` (fp32; with ``--bf16``
also under bfloat16 autocast) after one warm-up call each. The table gives the median
frames/s of each and mmrvos' ratio to the official code. Needs the official repository and
its two extra packages (``pip install einops loralib``), as the parity tool.
"""
import functools
import json
import os.path as osp
import statistics
import tempfile
import time
from argparse import Namespace


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def compare(args) -> dict:
    """Run the comparison described in the module docstring; returns the numbers."""
    import official_parity as parity  # beside this file (benchmark.py puts it on the path)
    import torch
    from mmdet.utils import register_all_modules
    helpers = parity._load_official_helpers()
    repo = helpers.check_official_repo(args.compare_official)
    config = args.official_config if osp.isfile(args.official_config) else osp.join(
        repo, args.official_config)
    if not osp.isfile(config):
        parity.fail(f'official config not found: {args.official_config}')
    torch.set_num_threads(args.threads)
    register_all_modules(init_default_scope=True)
    import mmrvos  # noqa: F401
    caption = args.caption
    paths = parity.frame_paths(args.frames_dir, args.frames[0])
    misc = helpers.import_official(repo, 'models.dino_util.misc')
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        torch.manual_seed(0)
        bert_dir = parity.write_bert(osp.join(workdir, 'bert'), caption)
        video, _ = parity.official_preprocess(paths)
        num = video.shape[0]
        for drop in args.drop_rates:
            ns = Namespace(
                drop_rate=drop,
                checkpoint=None,
                seed=0,
                lora_b_std=0.05,
                text_scale=0.05,
                mmrvos_config=None)
            official, ours, mm_cfg, _ = parity.build_models(ns, helpers, repo,
                                                            helpers.load_official_config(config),
                                                            bert_dir, workdir)
            _, samples = parity.mmrvos_preprocess(ours, mm_cfg, paths)
            for s in samples:
                s.set_metainfo(
                    dict(
                        batch_input_shape=tuple(video.shape[-2:]),
                        pad_shape=tuple(video.shape[-2:]),
                        img_shape=tuple(video.shape[-2:])))
            nested = misc.NestedTensor(
                video[None].clone(),
                torch.zeros((1, num) + tuple(video.shape[-2:]), dtype=torch.bool))

            def run_official(official=official):
                official.infer(nested, [caption], [{}])

            def run_ours(bf16=False, ours=ours):
                ours.test_cfg['autocast'] = 'bf16' if bf16 else None
                text = ours.encode_text([caption])
                ours.predict_video(video, samples, [text])

            runs = dict(official=run_official, mmrvos=run_ours)
            if args.bf16:
                runs['mmrvos_bf16'] = functools.partial(run_ours, True)
            times = {k: [] for k in runs}
            with torch.no_grad():
                for fn in runs.values():  # warm-up
                    fn()
                for _ in range(args.repeat):  # alternating rounds
                    for key, fn in runs.items():
                        times[key].append(_timed(fn))
            fps = {k: num / statistics.median(v) for k, v in times.items()}
            row = dict(
                drop_rate=drop,
                frames=num,
                size=list(video.shape[-2:]),
                threads=args.threads,
                seconds=times,
                fps=fps,
                ratio={k: fps[k] / fps['official']
                       for k in fps if k != 'official'})
            rows.append(row)
            _print_row(row)
            del official, ours, run_official, run_ours, runs
    result = dict(official_repo=repo, official_config=osp.basename(config), rows=rows)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)
    return result


def _print_row(row: dict) -> None:
    h, w = row['size']
    cells = [
        f"{k} {v:.3f} fps" + (f" ({row['ratio'][k]:.2f}x)" if k in row['ratio'] else '')
        for k, v in row['fps'].items()
    ]
    print(
        f"drop {row['drop_rate']:.2f}, {row['frames']} frames {w}x{h}, "
        f"{row['threads']} threads: " + ', '.join(cells),
        flush=True)

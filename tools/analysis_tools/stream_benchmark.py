"""Memory and latency against video length, streaming (``RVOSStream``) and offline
(``RVOSInferencer``, lazy reading): not a unit test.

    python tools/analysis_tools/stream_benchmark.py --frames 300 3000
    python tools/analysis_tools/stream_benchmark.py --frames 300 3000 --modes stream \\
        --size 640 360 --window 6 --texts "the red circle" "the blue square"

The video is synthetic (``--size`` W H, 640x360 by default: a textured background with two
moving shapes), generated frame by frame when the model asks for it and never stored. Each
(mode, length) runs in a process of its own (``--child``), whose peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``) is its own; the model is the tiny toy ReferDINO (random
weights unless ``--checkpoint``: memory and time do not depend on them), frames go through the
config's test pipeline as in ``tools/demo.py``.

Printed per run: peak RSS, RSS after 10 % and at the end of the frames, wall time; streaming
also the per-frame latency (``RVOSStream.step``) p50 / p99 over all frames and p50 over the
first and the last 10 % of the frames (flat latency: their ratio near 1) and the stream's
state in bytes. Then the acceptance figures: peak RSS of the longest over the shortest video
(streaming within 1.2x, offline within 1.5x) and the latency ratio. ``--json`` writes the
rows. Latencies are wall-clock times of a possibly shared machine.
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIG = osp.join(ROOT, 'configs', 'referdino', 'referdino_tiny_1xb2_toy-rvos.py')
STREAM_RSS_LIMIT, OFFLINE_RSS_LIMIT = 1.2, 1.5


class SyntheticFrames:
    """Frame ``t`` of a synthetic video, made when asked for: (H, W, 3) uint8 BGR."""

    def __init__(self, size=(640, 360), seed: int = 0) -> None:
        import cv2
        import numpy as np
        self.w, self.h = size
        rng = np.random.RandomState(seed)
        bg = (rng.rand(self.h // 8 + 1, self.w // 8 + 1, 3) * 120 + 60).astype(np.uint8)
        self.background = cv2.resize(bg, (self.w, self.h), interpolation=cv2.INTER_LINEAR)

    def __call__(self, t: int):
        import cv2
        img = self.background.copy()
        w, h = self.w, self.h
        x = int((0.1 + 0.8 * (t % 200) / 200) * w)
        cv2.circle(img, (x, h // 3), h // 8, (40, 40, 220), -1)
        cv2.rectangle(img, (w - x - 40, 2 * h // 3 - 30), (w - x + 40, 2 * h // 3 + 30),
                      (220, 160, 30), -1)
        return img


def synthetic_source(num: int, size):
    """A lazy ``FrameSource`` of ``num`` synthetic frames (for the offline path)."""
    from mmrvos.apis import FrameSource

    class SyntheticVideo(FrameSource):

        def __init__(self) -> None:
            self.names = [f'{i:05d}' for i in range(num)]
            self.size = tuple(size)
            self.description = f'synthetic {size[0]}x{size[1]} video of {num} frames'
            self.make = SyntheticFrames(size)

        def iter_frames(self, start=0, stop=None):
            start, stop = self._range(start, stop)
            for t in range(start, stop):
                yield self.make(t)

    return SyntheticVideo()


def rss_mb() -> float:
    """Current resident set size (MB)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values, q: float) -> float:
    import numpy as np
    return float(np.percentile(np.asarray(values), q)) if len(values) else float('nan')


def run_child(args) -> dict:
    """One (mode, length) run in this process."""
    import torch
    torch.set_num_threads(args.threads)
    from mmrvos.apis import RVOSInferencer, RVOSStream
    num = args.frames[0]
    inferencer = RVOSInferencer(
        args.config, weights=args.checkpoint, device='cpu', show_progress=False)
    row = dict(
        mode=args.modes[0],
        frames=num,
        size=list(args.size),
        texts=len(args.texts),
        threads=args.threads,
        rss_model_mb=rss_mb())
    t0 = time.time()
    if args.modes[0] == 'stream':
        stream = RVOSStream(
            inferencer.model, args.texts, window=args.window, pipeline=inferencer.pipeline)
        make = SyntheticFrames(tuple(args.size))
        latency = []
        for t in range(num):
            frame = make(t)
            start = time.perf_counter()
            stream.step(frame)
            latency.append(time.perf_counter() - start)
            if t + 1 == max(1, num // 10):
                row['rss_10pct_mb'] = rss_mb()
        tenth = max(1, num // 10)
        row.update(
            window=stream.window,
            state_bytes=stream.state_nbytes(),
            latency_p50_ms=1e3 * percentile(latency, 50),
            latency_p99_ms=1e3 * percentile(latency, 99),
            latency_first10_p50_ms=1e3 * percentile(latency[:tenth], 50),
            latency_last10_p50_ms=1e3 * percentile(latency[-tenth:], 50))
    else:
        source = synthetic_source(num, tuple(args.size))
        seen = [0]
        with tempfile.TemporaryDirectory(prefix='stream_benchmark_') as tmp:
            out_dir = osp.join(tmp, 'out') if args.write else None
            video = inferencer.preprocess(source)

            def on_frame(res):
                if out_dir is None:
                    seen[0] += 1
                    if seen[0] == max(1, num // 10):
                        row['rss_10pct_mb'] = rss_mb()

            if out_dir is None:  # the model path alone (what tools/demo.py runs, no writing)
                inferencer.forward(video, args.texts, on_frame)
            else:  # everything tools/demo.py does: masks, overlay mp4, results.json
                inferencer(
                    source, args.texts, out_dir=out_dir, return_masks=False, video_format='mp4')
        row['chunk_size'] = int(inferencer.model.test_cfg['chunk_size'])
    row.update(seconds=time.time() - t0, rss_end_mb=rss_mb(), peak_rss_mb=peak_rss_mb())
    row['fps'] = num / row['seconds']
    return row


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Peak RSS and per-frame latency against video '
                                'length, streaming and offline')
    p.add_argument('--frames', type=int, nargs='+', default=[300, 3000])
    p.add_argument(
        '--modes', nargs='+', choices=['stream', 'offline'], default=['stream', 'offline'])
    p.add_argument('--config', default=TINY_CONFIG)
    p.add_argument('--checkpoint')
    p.add_argument(
        '--size',
        type=int,
        nargs=2,
        default=[640, 360],
        metavar=('W', 'H'),
        help='synthetic frame size (the config resizes it)')
    p.add_argument('--window', type=int, help='streaming window (default: the config\'s)')
    p.add_argument('--texts', nargs='+', default=['the red circle', 'the blue square'])
    p.add_argument('--threads', type=int, default=1, help='torch threads (default 1)')
    p.add_argument(
        '--write',
        action='store_true',
        help='offline: also write masks, overlay mp4 and results.json (to a '
        'temporary folder) as tools/demo.py does')
    p.add_argument('--json', help='write the rows to this file')
    p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if any(n < 1 for n in args.frames):
        p.error('--frames must be positive')
    return args


def _child_cmd(args, mode: str, num: int) -> list:
    cmd = [
        sys.executable,
        osp.abspath(__file__), '--child', '--modes', mode, '--frames',
        str(num), '--config', args.config, '--size', *map(str, args.size), '--threads',
        str(args.threads), '--texts', *args.texts
    ]
    if args.checkpoint:
        cmd += ['--checkpoint', args.checkpoint]
    if args.window:
        cmd += ['--window', str(args.window)]
    if args.write:
        cmd.append('--write')
    return cmd


def describe(row: dict) -> str:
    text = (f'{row["mode"]:8s} {row["frames"]:6d} frames: peak RSS {row["peak_rss_mb"]:7.0f} MB '
            f'(model {row["rss_model_mb"]:.0f}, at 10 % {row.get("rss_10pct_mb", float("nan")):.0f}'
            f', end {row["rss_end_mb"]:.0f}), {row["seconds"]:7.1f} s ({row["fps"]:.1f} fps)')
    if row['mode'] == 'stream':
        text += (f'; latency p50 {row["latency_p50_ms"]:.1f} ms, p99 '
                 f'{row["latency_p99_ms"]:.1f} ms (p50 first 10 % '
                 f'{row["latency_first10_p50_ms"]:.1f}, last 10 % '
                 f'{row["latency_last10_p50_ms"]:.1f}); state {row["state_bytes"]} B')
    return text


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args)))
        return None
    env = dict(
        os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', OMP_NUM_THREADS=str(args.threads))
    rows = []
    for mode in args.modes:
        for num in sorted(args.frames):
            proc = subprocess.run(
                _child_cmd(args, mode, num), cwd=ROOT, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f'error: {mode} run on {num} frames failed:\n{proc.stderr[-3000:]}')
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(describe(row), flush=True)
    for mode, limit in (('stream', STREAM_RSS_LIMIT), ('offline', OFFLINE_RSS_LIMIT)):
        runs = [r for r in rows if r['mode'] == mode]
        if len(runs) < 2:
            continue
        short, long = runs[0], runs[-1]
        ratio = long['peak_rss_mb'] / short['peak_rss_mb']
        line = (f'{mode}: peak RSS {long["frames"]} / {short["frames"]} frames = {ratio:.3f} '
                f'(limit {limit}: {"ok" if ratio <= limit else "OVER"})')
        if mode == 'stream':
            line += (f'; latency p50 {long["frames"]} / {short["frames"]} frames = '
                     f'{long["latency_p50_ms"] / short["latency_p50_ms"]:.2f}, last / first 10 % '
                     f'of {long["frames"]} frames = '
                     f'{long["latency_last10_p50_ms"] / long["latency_first10_p50_ms"]:.2f}')
        print(line)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == '__main__':
    main()

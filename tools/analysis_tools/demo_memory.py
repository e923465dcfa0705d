"""Peak memory (max RSS) of ``tools/demo.py`` against video length: not a unit test.

    python tools/analysis_tools/demo_memory.py --frames 100 1000
    python tools/analysis_tools/demo_memory.py --frames 100 1000 --scale 640 360 \\
        --video-format mp4 --checkpoint ckpt.pth

For each length N the script writes N synthetic 640x360 JPEG frames (moving coloured shapes)
into a temporary folder and runs the demo on them as a user would, in its own subprocess
(``python tools/demo.py ...``). The peak RSS of that subprocess is read with
``resource.getrusage(RUSAGE_CHILDREN)`` in a measuring child of its own, so that each length's
figure is its own. Prints one line per length and the ratio of the longest to the shortest.
Weights: the checkpoint given, else random (memory does not depend on them).
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIG = osp.join(ROOT, 'configs', 'referdino', 'referdino_tiny_1xb2_toy-rvos.py')


def make_frames(folder: str, num: int, size=(640, 360), seed: int = 0) -> None:
    """``num`` JPEG frames of ``size`` (W, H): two shapes moving over a textured background."""
    import cv2
    import numpy as np
    rng = np.random.RandomState(seed)
    w, h = size
    background = (rng.rand(h // 8, w // 8, 3) * 120 + 60).astype(np.uint8)
    background = cv2.resize(background, (w, h), interpolation=cv2.INTER_LINEAR)
    os.makedirs(folder, exist_ok=True)
    for t in range(num):
        img = background.copy()
        x = int((0.1 + 0.8 * (t % 200) / 200) * w)
        cv2.circle(img, (x, h // 3), h // 8, (40, 40, 220), -1)
        cv2.rectangle(img, (w - x - 40, 2 * h // 3 - 30), (w - x + 40, 2 * h // 3 + 30),
                      (220, 160, 30), -1)
        cv2.imwrite(osp.join(folder, f'{t:05d}.jpg'), img, [cv2.IMWRITE_JPEG_QUALITY, 90])


def measure(cmd, env=None) -> dict:
    """Run ``cmd`` in a measuring child; returns its exit status, wall time and peak RSS."""
    probe = ('import resource, subprocess, sys, json, time\n'
             't = time.time()\n'
             'rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n'
             'print(json.dumps(dict(rc=rc, seconds=time.time() - t, max_rss_mb=resource.'
             'getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)))')
    out = subprocess.run([sys.executable, '-c', probe, *cmd],
                         env=env,
                         cwd=ROOT,
                         capture_output=True,
                         text=True)
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError(f'measuring child failed: {out.stderr[-2000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Peak RSS of tools/demo.py against video length')
    p.add_argument('--frames', type=int, nargs='+', default=[100, 1000])
    p.add_argument('--config', default=TINY_CONFIG)
    p.add_argument('--checkpoint')
    p.add_argument('--scale', type=int, nargs=2, default=[640, 360])
    p.add_argument('--video-format', choices=['gif', 'mp4'], default='mp4')
    p.add_argument('--text', default='the red circle')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    env = dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1')
    rows = []
    with tempfile.TemporaryDirectory(prefix='demo_memory_') as tmp:
        for num in sorted(args.frames):
            frames = osp.join(tmp, f'frames_{num}')
            t0 = time.time()
            make_frames(frames, num)
            made = time.time() - t0
            cmd = [
                sys.executable,
                osp.join(ROOT, 'tools', 'demo.py'), frames, '--text', args.text, '--config',
                args.config, '--out-dir',
                osp.join(tmp, f'out_{num}'), '--scale', *map(str, args.scale), '--video-format',
                args.video_format
            ]
            if args.checkpoint:
                cmd += ['--checkpoint', args.checkpoint]
            res = measure(cmd, env)
            if res['rc'] != 0:
                raise RuntimeError(f'demo failed on {num} frames (exit {res["rc"]}): ' +
                                   ' '.join(cmd))
            rows.append(dict(frames=num, **res))
            print(
                f'{num:6d} frames: peak RSS {res["max_rss_mb"]:8.0f} MB, '
                f'{res["seconds"]:6.1f} s (frames made in {made:.1f} s)',
                flush=True)
    if len(rows) > 1:
        print(f'peak RSS ratio {rows[-1]["frames"]} / {rows[0]["frames"]} frames: '
              f'{rows[-1]["max_rss_mb"] / rows[0]["max_rss_mb"]:.2f}')
    return rows


if __name__ == '__main__':
    main()

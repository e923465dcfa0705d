"""Time J&F (DAVIS definitions) on N frames of 480p masks.

    python tools/analysis_tools/benchmark_metrics.py --frames 1000

Synthetic but realistic masks: per video, an ellipse moving across the frame
(ground truth) and a prediction that is a shifted, slightly larger ellipse with
noisy border pixels. Frames are scored as videos of ``--video-len`` frames
(``evaluate_expression`` per video, as RVOSMetric / eval_masks do); mask
generation is not timed. Target: under 10 s for 1000 frames on 2 cores.
"""
import argparse
import os
import time

import numpy as np


def make_video(rng, t, h, w):
    yy, xx = np.ogrid[:h, :w]
    cy = h / 2 + 0.3 * h * np.sin(np.linspace(0, 3, t))
    cx = np.linspace(0.2 * w, 0.8 * w, t)
    ay, ax = 0.2 * h, 0.12 * w
    gt = np.empty((t, h, w), bool)
    pred = np.empty((t, h, w), bool)
    for i in range(t):
        gt[i] = ((yy - cy[i]) / ay)**2 + ((xx - cx[i]) / ax)**2 <= 1
        d = ((yy - cy[i] - 6) / (ay * 1.05))**2 + ((xx - cx[i] + 4) / (ax * 1.05))**2
        pred[i] = d <= 1 + 0.1 * (rng.random((h, w)) - 0.5)
    return gt, pred


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--frames', type=int, default=1000)
    p.add_argument('--video-len', type=int, default=100)
    p.add_argument('--height', type=int, default=480)
    p.add_argument('--width', type=int, default=854)
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args()

    from mmrvos.evaluation.functional import evaluate_expression

    rng = np.random.default_rng(args.seed)
    total, done, jf = 0.0, 0, []
    while done < args.frames:
        t = min(args.video_len, args.frames - done)
        gt, pred = make_video(rng, t, args.height, args.width)
        start = time.perf_counter()
        res = evaluate_expression(gt, pred)
        total += time.perf_counter() - start
        jf.append((res['J'].mean() + res['F'].mean()) / 2)
        done += t
    print(f'J&F of {done} frames of {args.height}x{args.width} masks: '
          f'{total:.2f} s ({1000 * total / done:.2f} ms/frame, '
          f'{os.cpu_count()} CPUs visible); mean J&F {np.mean(jf):.4f}')
    return total


if __name__ == '__main__':
    main()

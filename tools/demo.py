"""Referring video object segmentation demo.

    python tools/demo.py VIDEO --text "the man on the left" [--text "the red car" ...] \\
        --config CONFIG [--checkpoint CKPT] --out-dir DIR [--device cpu|cuda] \\
        [--scale 640 360] [--video-format gif|mp4] [--overwrite]

VIDEO is a video file (mp4, avi, ...) or a folder of frames. For each expression E_i the demo
writes ``DIR/exp<i>/<frame>.png`` (binary masks, 0/255, original resolution), one overlay video
``DIR/overlay.<gif|mp4>`` with every expression in its own colour, and ``DIR/results.json``
(per expression and frame: box xyxy in pixels, score). All expressions share the visual
backbone. An existing output folder is never overwritten without ``--overwrite``.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import time

import numpy as np
from PIL import Image


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='RVOS demo: video + expressions -> masks')
    p.add_argument('video', help='video file or folder of frames')
    p.add_argument('--text', action='append', required=True,
                   help='referring expression (repeat for several)')
    p.add_argument('--config', required=True)
    p.add_argument('--checkpoint', help='weights (random initialisation when omitted)')
    p.add_argument('--out-dir', required=True)
    p.add_argument('--device', default='cpu')
    p.add_argument('--scale', type=int, nargs=2, default=[640, 360], metavar=('LONG', 'SHORT'),
                   help='working resolution: long side <= LONG, short side <= SHORT')
    p.add_argument('--video-format', choices=['gif', 'mp4'], default='gif')
    p.add_argument('--fps', type=float, default=6.0)
    p.add_argument('--overwrite', action='store_true')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for t in args.text:
        if not t.strip():
            raise SystemExit('error: empty --text expression')
    if osp.exists(args.out_dir) and os.listdir(args.out_dir):
        if not args.overwrite:
            raise SystemExit(f'error: output folder {args.out_dir} exists and is not empty; '
                             'pass --overwrite or choose another --out-dir')
        shutil.rmtree(args.out_dir)
    from mmrvos.apis import inference_rvos, init_rvos_model, load_video
    from mmrvos.visualization import render_overlay_video

    frames, names = load_video(args.video)  # fails early on unreadable input
    model = init_rvos_model(args.config, args.checkpoint, device=args.device)
    t0 = time.time()
    results = inference_rvos(model, args.video, args.text, scale=tuple(args.scale))
    seconds = time.time() - t0
    os.makedirs(args.out_dir, exist_ok=True)
    summary = dict(video=args.video, config=args.config, checkpoint=args.checkpoint,
                   seconds=seconds, fps=len(names) / seconds, expressions=[])
    for i, res in enumerate(results):
        exp_dir = osp.join(args.out_dir, f'exp{i}')
        os.makedirs(exp_dir)
        for name, mask in zip(res['frame_names'], res['masks']):
            Image.fromarray(mask.astype(np.uint8) * 255).save(osp.join(exp_dir, f'{name}.png'))
        summary['expressions'].append(dict(
            text=res['text'], mask_dir=exp_dir,
            frames=[dict(frame=n, box=res['boxes'][t][0].round(2).tolist(),
                         score=float(res['scores'][t][0]), area=int(res['masks'][t].sum()))
                    for t, n in enumerate(res['frame_names'])]))
    video_path = render_overlay_video(frames, [r['masks'] for r in results], args.text,
                                      osp.join(args.out_dir, f'overlay.{args.video_format}'),
                                      fps=args.fps)
    with open(osp.join(args.out_dir, 'results.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    print(f'{len(names)} frames x {len(args.text)} expressions in {seconds:.1f} s '
          f'({len(names) / seconds:.2f} frames/s)')
    for i, e in enumerate(summary['expressions']):
        mean = np.mean([fr['score'] for fr in e['frames']])
        print(f'  exp{i} "{e["text"]}": mean score {mean:.3f}, masks in {e["mask_dir"]}')
    print(f'overlay: {video_path}\nresults: {osp.join(args.out_dir, "results.json")}')
    return summary


if __name__ == '__main__':
    main()

"""Referring video object segmentation demo.

    python tools/demo.py VIDEO --text "the man on the left" [--text "the red car" ...] \\
        --config CONFIG [--checkpoint CKPT] --out-dir DIR [--device cpu|cuda] \\
        [--scale 640 360] [--video-format gif|mp4] [--fps 6] [--overwrite]

VIDEO is a video file (mp4, avi, ...) or a folder of frames. For each expression E_i the demo
writes ``DIR/exp<i>/<frame>.png`` (binary masks, 0/255, original resolution), one overlay video
``DIR/overlay.<gif|mp4>`` with every expression in its own colour, and ``DIR/results.json``
(per expression and frame: box xyxy in pixels, score). All expressions share the visual
backbone.

Frames are read lazily and outputs written frame by frame, so memory does not grow with the
video's frames (a GIF overlay keeps at most 300 frames, 640 px wide; use mp4 for long videos).
A frame folder is checked first: every frame a complete image (a truncated JPEG/PNG is an
error), all of one size, one file per frame name; frames are taken in numeric order
(``2.jpg`` before ``10.jpg``, with a warning when that differs from alphabetical order).

Outputs are written into a temporary folder beside DIR and moved into place once complete.
An existing non-empty DIR is refused without ``--overwrite``; with it, DIR is replaced only
after the new result is complete, and only if it holds nothing but an earlier demo output.
Errors print ``error: ...`` and exit with status 2 (``MMRVOS_DEBUG=1`` shows the traceback).
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
import time

import numpy as np
from PIL import Image

from mmrvos.apis.cli import run_cli
from mmrvos.fileio import StagedOutputDir

DEMO_OUTPUTS = ('exp*', 'overlay.gif', 'overlay.mp4', 'results.json')


def _positive(kind):
    def parse(value):
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f'not a number: {value!r}') from None
        if not (number > 0 and math.isfinite(number)):
            raise argparse.ArgumentTypeError(f'must be > 0, got {value}')
        return number
    return parse


def _expression(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError('empty expression')
    return value.strip()


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='RVOS demo: video + expressions -> masks. An existing non-empty --out-dir '
        'is only replaced with --overwrite, after the new result is complete.')
    p.add_argument('video', help='video file or folder of frames')
    p.add_argument('--text', action='append', required=True, type=_expression,
                   help='referring expression (repeat for several)')
    p.add_argument('--config', required=True, help='model config (.py)')
    p.add_argument('--checkpoint', help='weights (random initialisation when omitted)')
    p.add_argument('--out-dir', required=True)
    p.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    p.add_argument('--scale', type=_positive(int), nargs=2, default=[640, 360],
                   metavar=('LONG', 'SHORT'),
                   help='working resolution: long side <= LONG, short side <= SHORT')
    p.add_argument('--video-format', choices=['gif', 'mp4'], default='gif',
                   help='overlay format; a gif keeps at most 300 frames (mp4: all)')
    p.add_argument('--fps', type=_positive(float), default=6.0, help='overlay frame rate')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing --out-dir holding an earlier demo output')
    return p.parse_args(argv)


class DemoWriter:
    """Writes each frame's masks, overlay frame and summary as its results arrive.

    Args:
        out_dir (str): where to write (the staged temporary folder).
        frames (FrameSource): a reader of its own for the video (so that a video file is
            decoded sequentially by the model's reader and by this one).
    """

    def __init__(self, out_dir, frames, texts, video_format, fps):
        from mmrvos.apis.overlay_writer import OverlayVideoWriter
        self.exp_dirs = [osp.join(out_dir, f'exp{i}') for i in range(len(texts))]
        for d in self.exp_dirs:
            os.makedirs(d)
        self.overlay = OverlayVideoWriter(osp.join(out_dir, f'overlay.{video_format}'), texts,
                                          len(frames), fps=fps)
        self.frames = frames.iter_frames()
        self.records = [[] for _ in texts]

    def __call__(self, res):
        frame = next(self.frames)
        for i, mask in enumerate(res['masks']):
            Image.fromarray(mask.astype(np.uint8) * 255).save(
                osp.join(self.exp_dirs[i], f'{res["name"]}.png'))
            self.records[i].append(dict(frame=res['name'],
                                        box=res['boxes'][i][0].round(2).tolist(),
                                        score=float(res['scores'][i][0]), area=int(mask.sum())))
        self.overlay.add(frame, res['masks'])

    def close(self):
        return self.overlay.close()


def main(argv=None):
    args = parse_args(argv)
    staged = StagedOutputDir(args.out_dir, args.overwrite, expected=DEMO_OUTPUTS)
    staged.check()  # before any work
    from mmrvos.apis import check_device, init_rvos_model, open_video, segment_video
    check_device(args.device)
    source = open_video(args.video)  # checks every frame's header and tail: fails early
    model = init_rvos_model(args.config, args.checkpoint, device=args.device)
    with staged as tmp:
        t0 = time.time()
        writer = DemoWriter(tmp, open_video(args.video), args.text, args.video_format,
                            args.fps)
        segment_video(model, source, args.text, writer, scale=tuple(args.scale))
        writer.close()
        seconds = max(time.time() - t0, 1e-6)
        summary = dict(video=args.video, config=args.config, checkpoint=args.checkpoint,
                       seconds=seconds, fps=len(source) / seconds, expressions=[
                           dict(text=t, mask_dir=osp.join(args.out_dir, f'exp{i}'),
                                frames=writer.records[i]) for i, t in enumerate(args.text)])
        with open(osp.join(tmp, 'results.json'), 'w') as f:
            json.dump(summary, f, indent=1)
    print(f'{len(source)} frames x {len(args.text)} expressions in {seconds:.1f} s '
          f'({len(source) / seconds:.2f} frames/s, writing included)')
    for i, e in enumerate(summary['expressions']):
        mean = np.mean([fr['score'] for fr in e['frames']])
        print(f'  exp{i} "{e["text"]}": mean score {mean:.3f}, masks in {e["mask_dir"]}')
    print(f'overlay: {osp.join(args.out_dir, f"overlay.{args.video_format}")}\n'
          f'results: {osp.join(args.out_dir, "results.json")}')
    return summary


if __name__ == '__main__':
    sys.exit(run_cli(main))

"""Referring video object segmentation demo: a thin command line over ``RVOSInferencer``.

    python tools/demo.py VIDEO [CONFIG] --texts "the man on the left" "the red car" \\
        [--weights CKPT] --out-dir DIR [--device cpu|cuda] [--scale 640 360] \\
        [--video-format gif|mp4] [--fps 6] [--overwrite]

VIDEO is a video file (mp4, avi, ...) or a folder of frames; CONFIG a config file or a model
name of the metafile (also accepted as ``--config``); ``--text`` (repeatable) is the same as
``--texts``, ``--checkpoint`` as ``--weights``. Frames go through the config's test pipeline
(``--scale LONG SHORT`` replaces its resize). For each expression E_i the demo writes
``DIR/exp<i>/<frame>.png`` (binary masks, 0/255, original resolution), one overlay video
``DIR/overlay.<gif|mp4>`` with every expression in its own colour, and ``DIR/results.json``
(per expression and frame: box xyxy in pixels, score, mask area). All expressions share the
visual backbone.

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
import math
import os.path as osp
import sys

import numpy as np

from mmrvos.apis.cli import run_cli


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
        description='RVOS demo: video + expressions -> masks, overlay video, results.json. '
        'An existing non-empty --out-dir is only replaced with --overwrite, after the new '
        'result is complete.')
    p.add_argument('video', help='video file or folder of frames')
    p.add_argument('model', nargs='?', metavar='CONFIG',
                   help='model config (.py) or metafile model name (or use --config)')
    p.add_argument('--texts', dest='texts', action='extend', nargs='+', type=_expression,
                   metavar='TEXT', help='referring expression(s)')
    p.add_argument('--text', dest='texts', action='append', type=_expression,
                   help='one referring expression (repeat for several)')
    p.add_argument('--config', help='model config (.py), same as CONFIG')
    p.add_argument('--weights', '--checkpoint', dest='weights',
                   help='checkpoint (random initialisation when omitted)')
    p.add_argument('--out-dir', required=True)
    p.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    p.add_argument('--scale', type=_positive(int), nargs=2, metavar=('LONG', 'SHORT'),
                   help="working resolution replacing the config's test resize: long side <= "
                   'LONG, short side <= SHORT')
    p.add_argument('--video-format', choices=['gif', 'mp4'], default='gif',
                   help='overlay format; a gif keeps at most 300 frames (mp4: all)')
    p.add_argument('--fps', type=_positive(float),
                   help="overlay frame rate (default: the video file's, else 6)")
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing --out-dir holding an earlier demo output')
    args = p.parse_args(argv)
    if args.model and args.config and args.model != args.config:
        p.error(f'two configs given: {args.model} and --config {args.config}')
    args.config = args.config or args.model
    if not args.config:
        p.error('a config is required (CONFIG or --config)')
    if not args.texts:
        p.error('at least one expression is required (--texts TEXT [TEXT ...])')
    return args


def main(argv=None):
    args = parse_args(argv)
    from mmrvos.apis import INFERENCE_OUTPUTS, RVOSInferencer, check_device, open_video
    from mmrvos.fileio import StagedOutputDir
    StagedOutputDir(args.out_dir, args.overwrite, expected=INFERENCE_OUTPUTS).check()
    check_device(args.device)
    source = open_video(args.video)  # checks every frame's header and tail: fails early
    inferencer = RVOSInferencer(args.config, weights=args.weights, device=args.device,
                                scale=tuple(args.scale) if args.scale else None)
    result = inferencer(source, args.texts, out_dir=args.out_dir, overwrite=args.overwrite,
                        return_masks=False, video_format=args.video_format, fps=args.fps)
    summary = dict(result['summary'], video=args.video)
    seconds = summary['seconds']
    print(f'{len(source)} frames x {len(args.texts)} expressions in {seconds:.1f} s '
          f'({len(source) / seconds:.2f} frames/s, writing included)')
    for i, e in enumerate(summary['expressions']):
        mean = np.mean([fr['score'] for fr in e['frames']])
        print(f'  exp{i} "{e["text"]}": mean score {mean:.3f}, masks in {e["mask_dir"]}')
    print(f'overlay: {result["visualization"]}\n'
          f'results: {osp.join(args.out_dir, "results.json")}')
    return summary


if __name__ == '__main__':
    sys.exit(run_cli(main))

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

Streaming (``--stream``, :class:`~mmrvos.apis.RVOSStream`, docs/en/streaming.md)::

    python tools/demo.py SOURCE CONFIG --stream [--window 6] [--delay 0] [--max-frames N] \\
        [--skip-bad-frames] --texts ... --out-dir DIR [--video-format mp4]

SOURCE is a video file, a frame folder, a camera index (``0``) or a URL OpenCV opens. Frames
are read one at a time and segmented online (the temporal decoder over the last ``--window``
frames, the track chosen by its running mean score; with ``--delay D`` frame t - D is written
when frame t is read, knowing the D frames after it); each frame's masks go to
``DIR/exp<i>/<frame>.png`` and a line to ``DIR/results.jsonl`` as soon as it is segmented,
``DIR/overlay.mp4`` only with ``--video-format mp4``; ``DIR/results.json`` (a summary) comes
last, also after an error. Memory does not grow with the video. DIR is written in place (a
new or empty folder), so a consumer sees the masks as they come; with ``--overwrite`` an
earlier output is replaced only once the new one is complete (the new one is written beside
it until then). A frame that cannot be read, a frame of another size, a video that stops
decoding before its announced end and a camera that stops delivering frames end the run with
``error: ...`` (status 2), or with ``--skip-bad-frames`` the bad frame is skipped with a
warning; Ctrl-C ends it with status 130. The masks already written are kept in every case.
"""
import argparse
import math
import os
import os.path as osp
import sys
from collections import deque

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


def _non_negative_int(value):
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not an integer: {value!r}') from None
    if number < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {value}')
    return number


def _expression(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError('empty expression')
    return value.strip()


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='RVOS demo: video + expressions -> masks, overlay video, results.json. '
        'An existing non-empty --out-dir is only replaced with --overwrite, after the new '
        'result is complete.')
    p.add_argument(
        'video',
        metavar='VIDEO',
        help='video file or folder of frames (--stream: also a camera index or a '
        'URL)')
    p.add_argument(
        'model',
        nargs='?',
        metavar='CONFIG',
        help='model config (.py) or metafile model name (or use --config)')
    p.add_argument(
        '--texts',
        dest='texts',
        action='extend',
        nargs='+',
        type=_expression,
        metavar='TEXT',
        help='referring expression(s)')
    p.add_argument(
        '--text',
        dest='texts',
        action='append',
        type=_expression,
        help='one referring expression (repeat for several)')
    p.add_argument('--config', help='model config (.py), same as CONFIG')
    p.add_argument(
        '--weights',
        '--checkpoint',
        dest='weights',
        help='checkpoint (random initialisation when omitted)')
    p.add_argument('--out-dir', required=True)
    p.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    p.add_argument(
        '--scale',
        type=_positive(int),
        nargs=2,
        metavar=('LONG', 'SHORT'),
        help="working resolution replacing the config's test resize: long side <= "
        'LONG, short side <= SHORT')
    p.add_argument(
        '--video-format',
        choices=['gif', 'mp4'],
        help='overlay format (default gif); a gif keeps at most 300 frames (mp4: '
        'all); --stream writes an overlay only with mp4')
    p.add_argument(
        '--fps',
        type=_positive(float),
        help="overlay frame rate (default: the video file's, else 6)")
    p.add_argument(
        '--overwrite',
        action='store_true',
        help='replace an existing --out-dir holding an earlier demo output')
    p.add_argument(
        '--refine',
        metavar='SAM2_DIR',
        help='refine the masks with SAM 2 (SAM2VideoRefiner): a local transformers SAM 2 '
        "checkpoint folder (e.g. a download of 'facebook/sam2.1-hiera-large'); the "
        "best-scored frame's mask prompts SAM 2, propagated through the video, used where "
        'SAM 2 is confident. Off by default')
    stream = p.add_argument_group('streaming (online, frame by frame)')
    stream.add_argument(
        '--stream',
        action='store_true',
        help='segment frame by frame as they are read (RVOSStream), writing '
        'masks as they come')
    stream.add_argument(
        '--window',
        type=_positive(int),
        help='frames the temporal decoder attends over (default: the '
        "config's test_cfg.stream_window, else 6)")
    stream.add_argument(
        '--delay',
        type=_non_negative_int,
        help='write frame t - DELAY when frame t is read: the DELAY frames after '
        "it are then seen (default: the config's test_cfg.stream_delay, else 0); "
        'must be < --window')
    stream.add_argument(
        '--max-frames',
        type=_positive(int),
        help='stop after this many frames (a camera runs until Ctrl-C '
        'otherwise)')
    stream.add_argument(
        '--skip-bad-frames',
        action='store_true',
        help='warn and skip a frame that cannot be read or has another size, '
        'instead of stopping')
    stream.add_argument(
        '--stall-timeout',
        type=_positive(float),
        metavar='SECONDS',
        help='a camera or URL that gives no frame for this long has stopped '
        '(default 2)')
    args = p.parse_args(argv)
    stream_only = [
        f'--{k.replace("_", "-")}'
        for k in ('window', 'delay', 'max_frames', 'skip_bad_frames', 'stall_timeout')
        if getattr(args, k) not in (None, False)
    ]
    if stream_only and not args.stream:
        p.error(f'{", ".join(stream_only)} only apply with --stream')
    if args.stream and args.video_format == 'gif':
        p.error('--stream writes its overlay frame by frame: use --video-format mp4 (a gif is '
                'written in one go at the end)')
    if not args.stream:
        args.video_format = args.video_format or 'gif'
    if args.refine and args.stream:
        p.error('--refine needs the whole video (SAM 2 propagates both ways): not with --stream')
    if args.refine and not os.path.isdir(args.refine):
        p.error(f'--refine {args.refine}: not a folder (a local transformers SAM 2 checkpoint)')

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
    if args.stream:
        return run_stream(args)
    from mmrvos.apis import INFERENCE_OUTPUTS, RVOSInferencer, check_device, open_video
    from mmrvos.fileio import StagedOutputDir
    StagedOutputDir(args.out_dir, args.overwrite, expected=INFERENCE_OUTPUTS).check()
    check_device(args.device)
    source = open_video(args.video)  # checks every frame's header and tail: fails early
    inferencer = RVOSInferencer(
        args.config,
        weights=args.weights,
        device=args.device,
        scale=tuple(args.scale) if args.scale else None,
        refiner=args.refine)
    result = inferencer(
        source,
        args.texts,
        out_dir=args.out_dir,
        overwrite=args.overwrite,
        return_masks=False,
        video_format=args.video_format,
        fps=args.fps)
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


def _stream_destination(out_dir: str, overwrite: bool, expected) -> tuple:
    """Where ``--stream`` writes: ``out_dir`` itself when it is new or empty (masks visible as
    they come), else (``--overwrite``, an earlier demo output) a sibling folder that replaces
    it once complete. Returns (folder, staged)."""
    import tempfile

    from mmrvos.fileio import check_output_dir
    check_output_dir(out_dir, overwrite, expected)
    if osp.isdir(out_dir) and os.listdir(out_dir):
        parent, name = osp.split(osp.abspath(out_dir))
        return tempfile.mkdtemp(prefix=f'.{name}.partial-', dir=parent), True
    os.makedirs(out_dir, exist_ok=True)
    return out_dir, False


def run_stream(args) -> dict:
    """``--stream``: RVOSStream over frames read one at a time, outputs written as they come."""
    import time

    from mmrvos.apis import INFERENCE_OUTPUTS, RVOSInferencer, RVOSStream, check_device
    from mmrvos.apis.stream_source import open_stream_source
    from mmrvos.apis.stream_writer import StreamResultWriter
    from mmrvos.fileio import check_output_dir, read_image_strict, replace_dir
    from mmrvos.visualization import OverlayVideoWriter
    check_output_dir(args.out_dir, args.overwrite, INFERENCE_OUTPUTS)
    check_device(args.device)
    # opens a camera / file now: fails early
    source = open_stream_source(args.video, args.stall_timeout or 2.0)
    inferencer = RVOSInferencer(
        args.config,
        weights=args.weights,
        device=args.device,
        scale=tuple(args.scale) if args.scale else None,
        show_progress=False)
    stream = RVOSStream(
        inferencer.model,
        args.texts,
        window=args.window,
        delay=args.delay,
        pipeline=inferencer.pipeline,
        video_id=osp.basename(osp.normpath(str(args.video))))
    dest, staged = _stream_destination(args.out_dir, args.overwrite, INFERENCE_OUTPUTS)
    overlay = None
    if args.video_format == 'mp4':
        overlay = OverlayVideoWriter(
            osp.join(dest, 'overlay.mp4'), 0, fps=args.fps or source.fps or 6.0)
    writer = StreamResultWriter(
        dest, args.texts, overlay,
        lambda frame, res: inferencer.visualize([frame], [res], texts=args.texts)[0])
    total = source.length if args.max_frames is None else min(source.length or args.max_frames,
                                                              args.max_frames)
    print(
        f'streaming {source.description} ({total or "unknown number of"} frames) x '
        f'{len(args.texts)} expressions, window {stream.window}, delay {stream.delay}; '
        f'masks go to '
        f'{osp.join(dest, "exp<i>")} as they come',
        flush=True)
    summary = dict(
        video=str(args.video),
        config=inferencer.config_file,
        weights=args.weights,
        window=stream.window,
        delay=stream.delay,
        stream=True)
    skipped, stopped, t0 = [], None, time.time()
    given, done = 0, 0
    frames = deque()  # the frames given and not written yet (at most delay + 1)

    def write(results) -> None:
        nonlocal done
        name, frame = results[0]['frame'], frames.popleft()
        if isinstance(frame, str):
            frame = read_image_strict(frame)
        writer.add(name, results, frame)
        done += 1
        if done == 1 or done % 10 == 0 or done == total:
            rate = done / max(time.time() - t0, 1e-6)
            print(
                f'frame {name}: {done}{"/" + str(total) if total else ""} frames, '
                f'{rate:.2f} frames/s',
                flush=True)

    try:
        for name, frame in source:
            if args.max_frames is not None and given >= args.max_frames:
                break
            try:
                results = stream.step(frame, name)
            except (OSError, ValueError) as err:
                if not args.skip_bad_frames:
                    raise
                print(f'warning: skipped frame {name}: {err}', file=sys.stderr, flush=True)
                skipped.append(name)
                stream.skip()  # the frames after it keep their place in time
                continue
            given += 1
            frames.append(frame if overlay is not None else None)
            if results is not None:
                write(results)
        for results in stream.flush():  # the last --delay frames
            write(results)
    except BaseException as err:
        stopped = 'interrupted' if isinstance(err, KeyboardInterrupt) else str(err)
        try:  # the frames segmented before the failure are complete: write them
            for results in stream.flush():
                write(results)
        except Exception:  # noqa: B902 (the first error is the one to report)
            pass
        where = dest if not staged else f'{dest} ({args.out_dir} is untouched)'
        print(
            f'stopped after {done} frames; their masks are kept in {where}',
            file=sys.stderr,
            flush=True)
        raise
    finally:
        source.close()
        seconds = max(time.time() - t0, 1e-6)
        summary.update(
            frames=done, skipped=skipped, stopped=stopped, seconds=seconds, fps=done / seconds)
        summary = writer.close(summary, final_dir=args.out_dir if stopped is None else dest)
    if staged:
        replace_dir(dest, args.out_dir)
    print(f'{done} frames x {len(args.texts)} expressions in {seconds:.1f} s '
          f'({done / seconds:.2f} frames/s, writing included)' +
          (f'; skipped {len(skipped)} bad frame(s): {", ".join(skipped)}' if skipped else ''))
    for i, text in enumerate(args.texts):
        print(f'  exp{i} "{text}": masks in {osp.join(args.out_dir, f"exp{i}")}')
    print(f'results: {osp.join(args.out_dir, "results.jsonl")}')
    return summary


if __name__ == '__main__':
    sys.exit(run_cli(main))

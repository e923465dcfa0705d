"""What the web demo (``demo/webui.py``) does, without a browser or gradio: check a request
(video, expressions, config, checkpoint, size limits), run :class:`RVOSInferencer` on it with a
progress callback, and pack the masks and ``results.json`` into a zip.

Every user mistake is a :class:`WebUIError` whose message names the file (the uploaded file's
own name, not the server's temporary path) and the problem; nothing is written before the
checks pass, and a run that fails leaves no output folder behind (the inferencer writes into a
staged folder, moved into place only when complete).

Layout of one run (a new folder per run; nothing is replaced)::

    work_dir/run-<stamp>/exp<i>/<frame>.png   masks of expression i (0/255)
    work_dir/run-<stamp>/overlay.mp4          every expression drawn (RVOSLocalVisualizer)
    work_dir/run-<stamp>/overlay.webm         the same, VP8, for the browser's player
    work_dir/run-<stamp>/results.json         per expression and frame: box, score, area
    work_dir/run-<stamp>.zip                  exp<i>/<frame>.png + results.json
"""
import glob
import os
import os.path as osp
import threading
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from .cli import is_clear_error

# the tiny model (random weights unless a checkpoint is given) and the config that `make demo`
# trains its checkpoint with (tools/misc/run_demo.py: outputs/demo/<stamp>/stage2_referdino/)
TINY_CONFIG = osp.join('configs', 'referdino', 'referdino_tiny_1xb2_toy-rvos.py')
DEMO_CONFIG = osp.join('configs', 'referdino', 'referdino_tiny_1xb3-ft_toy-rvos.py')
DEMO_CHECKPOINTS = osp.join('outputs', 'demo', '*', 'stage2_referdino', 'iter_*.pth')
JUDO_FRAMES = osp.join('..', 'shared', 'fixtures', 'davis-judo', 'JPEGImages', 'judo')

# progress(fraction in [0, 1], description)
ProgressFn = Callable[[float, str], None]


class WebUIError(ValueError):
    """A request the demo refuses; the message is shown to the user as it is."""


@dataclass
class Limits:
    """Largest video the demo accepts.

    Args:
        max_frames (int): most frames.
        max_pixels (int): most frames x width x height (the work grows with it).
        max_upload_mb (float): largest upload, in MB (checked by gradio before the file is
            stored).
    """

    max_frames: int = 300
    max_pixels: int = 120_000_000  # e.g. 290 frames of 854x480
    max_upload_mb: float = 200.0

    def __post_init__(self) -> None:
        for name in ('max_frames', 'max_pixels', 'max_upload_mb'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f'{name} must be a positive number, got {value!r}')


@dataclass
class DemoResult:
    """What one run returns to the page.

    Attributes:
        run_dir (str): the run's output folder (masks, overlays, results.json).
        zip_path (str): zip of ``exp<i>/<frame>.png`` and ``results.json``.
        json_path (str): ``results.json``.
        overlay (str | None): overlay video for the browser (webm, VP8), or None when this
            OpenCV cannot write one (``overlay.mp4`` is then in ``run_dir`` only).
        predictions (list[dict]): :class:`RVOSInferencer`'s predictions.
        status (str): summary for the status box (warnings first).
    """

    run_dir: str
    zip_path: str
    json_path: str
    overlay: Optional[str]
    predictions: List[Dict]
    status: str
    warnings: List[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- defaults
def find_demo_checkpoint(root: str) -> Optional[str]:
    """The newest checkpoint of ``make demo`` under ``root`` (the ReferDINO stage-2 run of the
    latest ``outputs/demo/<stamp>/``, its last iteration), or None."""
    found = glob.glob(osp.join(root, DEMO_CHECKPOINTS))

    def key(path):
        stamp = osp.basename(osp.dirname(osp.dirname(path)))
        it = osp.splitext(osp.basename(path))[0].rsplit('_', 1)[-1]
        return stamp, int(it) if it.isdigit() else -1

    return max(found, key=key) if found else None


def default_model(root: str) -> Tuple[str, Optional[str]]:
    """(config, checkpoint) the page starts with, relative to ``root`` where inside it: the
    ``make demo`` checkpoint with its config when there is one, else the tiny config and no
    checkpoint (random weights)."""
    ckpt = find_demo_checkpoint(root)
    if ckpt is None:
        return TINY_CONFIG, None
    return DEMO_CONFIG, osp.relpath(ckpt, root)


def config_choices(root: str) -> List[str]:
    """The configs of ``configs/referdino/`` and of the projects (``projects/*/configs/``;
    relative to ``root``): ReferDINO's first, tiny ones first within each."""
    patterns = [('configs', 'referdino', '*.py'), ('projects', '*', 'configs', '*.py')]
    names = [
        osp.relpath(p, root) for pattern in patterns for p in glob.glob(osp.join(root, *pattern))
    ]
    return sorted(
        names, key=lambda n: (not n.startswith('configs'), 'tiny' not in osp.basename(n), n))


def judo_frames(root: str) -> Optional[str]:
    """The bundled DAVIS ``judo`` frame folder beside the repository, or None."""
    path = osp.normpath(osp.join(root, JUDO_FRAMES))
    return path if osp.isdir(path) else None


# ---------------------------------------------------------------------------- checks
def parse_expressions(text: Optional[str]) -> List[str]:
    """One expression per line; blank lines are skipped.

    Raises:
        WebUIError: no expression.
    """
    texts = [line.strip() for line in (text or '').splitlines()]
    texts = [t for t in texts if t]
    if not texts:
        raise WebUIError('no expression: type at least one referring expression (one per '
                         'line)')
    return texts


def resolve_file(path: Optional[str], root: str, what: str) -> Optional[str]:
    """``path`` as given, else relative to ``root`` (the repository), when that file exists;
    None for an empty field.

    Raises:
        WebUIError: ``{what} not found: path``.
    """
    path = (path or '').strip()
    if not path:
        return None
    for candidate in (path, osp.join(root, path)):
        if osp.isfile(candidate):
            return osp.abspath(candidate)
    raise WebUIError(f'{what} not found: {path}')


def resolve_config(config: Optional[str], root: str) -> str:
    """A config file (as given or under ``root``) or a metafile model name (passed on).

    Raises:
        WebUIError: no config given, or a ``.py`` file that does not exist.
    """
    config = (config or '').strip()
    if not config:
        raise WebUIError('no config: choose one (e.g. ' + TINY_CONFIG + ')')
    if config.lower().endswith(('.py', '.json', '.yaml', '.yml')) or os.sep in config:
        return resolve_file(config, root, 'config')
    return config  # a model name of the metafile: RVOSInferencer looks it up


def _display_name(path: str, name: Optional[str]) -> Callable[[str], str]:
    """Replace the server-side path of an upload by the user's file name in messages."""
    if not name or name == path:
        return lambda msg: msg
    return lambda msg: msg.replace(path, name)


def open_checked_video(path: Optional[str], limits: Limits, name: Optional[str] = None):
    """Open a video (file or frame folder) lazily and check it against ``limits``.

    Args:
        path (str): the video on the server.
        limits (Limits): size limits.
        name (str, optional): what to call it in messages (an upload's own name).

    Returns:
        FrameSource: the checked video.

    Raises:
        WebUIError: no video, an unreadable one (naming it), or one over a limit.
    """
    from .video_reader import open_video
    if not path:
        raise WebUIError('no video: upload one (mp4, avi, webm, ...) or tick the bundled '
                         'judo frames')
    show = _display_name(path, name)
    label = name or path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # frame-order warnings: numeric order is used
            source = open_video(path)
    except (OSError, ValueError) as err:
        raise WebUIError(show(str(err))) from None
    width, height = source.size
    frames = len(source)
    pixels = frames * width * height
    if frames > limits.max_frames:
        raise WebUIError(f'{label}: {frames} frames is over the limit of this demo '
                         f'({limits.max_frames} frames, --max-frames); trim the video')
    if pixels > limits.max_pixels:
        raise WebUIError(
            f'{label}: {frames} frames of {width}x{height} = {pixels:,} pixels is over the '
            f'limit of this demo ({limits.max_pixels:,} pixels, --max-pixels); trim or '
            'downscale the video')
    return source


def checkpoint_error(err: BaseException, checkpoint: Optional[str], config: str) -> Optional[str]:
    """A short message for a checkpoint that cannot be loaded (mmengine's strict loading
    lists every missing key, thousands of names; an unreadable file is a RuntimeError), or
    None when ``err`` is not about the checkpoint."""
    text = str(err)
    if checkpoint is None or not isinstance(err, RuntimeError):
        return None
    if 'not a readable torch checkpoint' in text:
        return text
    from .inference import checkpoint_mismatch_message
    return checkpoint_mismatch_message(text, checkpoint, config)


# ---------------------------------------------------------------------------- running
def _progress_inferencer_cls():
    """:class:`RVOSInferencer` that reports its progress to ``self.report`` (a
    :data:`ProgressFn`): 0 -> 0.5 while frames are read and encoded, 0.5 -> 0.95 while
    they are segmented (the rest: writing the zip and the browser's overlay)."""
    from .rvos_inferencer import RVOSInferencer

    class ProgressRVOSInferencer(RVOSInferencer):
        report: Optional[ProgressFn] = None

        def forward(self, inputs, texts=(), on_frame=None, **kwargs):
            report = self.report
            if report is None:
                return super().forward(inputs, texts, on_frame, **kwargs)
            total = max(len(inputs), 1)
            state = dict(read=0, done=0)
            previous = inputs.on_read

            def on_read(start: int, stop: int) -> None:
                if previous is not None:
                    previous(start, stop)
                if stop > state['read']:
                    state['read'] = stop
                    report(0.5 * stop / total, f'encoding frames {stop}/{total}')

            def on_done(res: Dict) -> None:
                on_frame(res)
                state['done'] += 1
                report(0.5 + 0.45 * state['done'] / total,
                       f'segmenting frames {state["done"]}/{total}')

            inputs.on_read = on_read
            return super().forward(inputs, texts, on_done, **kwargs)

    return ProgressRVOSInferencer


class WebUIBackend:
    """The web demo's work: one cached model, one new output folder per run.

    Args:
        root (str): repository root (relative configs, checkpoints and the judo frames).
        work_dir (str): where runs are written (one ``run-<stamp>`` folder each).
        limits (Limits): video size limits.
        device (str, optional): 'cpu', 'cuda', 'cuda:N'; default: CUDA when available.
    """

    def __init__(self,
                 root: str,
                 work_dir: str,
                 limits: Optional[Limits] = None,
                 device: Optional[str] = None) -> None:
        self.root, self.work_dir = root, work_dir
        self.limits = limits or Limits()
        self.device = device
        self._key = None
        self._inferencer = None
        self._lock = threading.Lock()

    # -------------------------------------------------------------- model
    def inferencer(self, config: str, checkpoint: Optional[str]):
        """The inferencer of (config, checkpoint), built once and reused while they stay the
        same files (same modification times).

        Raises:
            WebUIError: the model cannot be built or the checkpoint not loaded (naming it).
        """

        def stamp(path):
            return (path, osp.getmtime(path)) if path and osp.isfile(path) else (path, None)

        key = (stamp(config), stamp(checkpoint), self.device)
        if key != self._key:
            self._inferencer = self._key = None
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings('ignore', message='.*randomly initialised.*')
                    self._inferencer = _progress_inferencer_cls()(
                        config, weights=checkpoint, device=self.device, show_progress=False)
            except Exception as err:  # noqa: B902
                if is_clear_error(err):
                    raise WebUIError(str(err)) from None
                message = checkpoint_error(err, checkpoint, config)
                if message is None:
                    raise
                raise WebUIError(message) from None
            self._key = key
        return self._inferencer

    # -------------------------------------------------------------- one request
    def check(self,
              video: Optional[str],
              expressions: Optional[str],
              config: Optional[str],
              checkpoint: Optional[str],
              use_judo: bool = False,
              video_name: Optional[str] = None):
        """Every check of a request, before anything is built or written.

        Returns:
            tuple: (FrameSource, texts, config, checkpoint or None, label of the video).

        Raises:
            WebUIError: the first problem found.
        """
        if use_judo:
            video = judo_frames(self.root)
            if video is None:
                raise WebUIError('the bundled judo frames are not here: '
                                 f'{osp.normpath(osp.join(self.root, JUDO_FRAMES))} does not '
                                 'exist; upload a video instead')
            video_name = 'judo'
        texts = parse_expressions(expressions)
        config = resolve_config(config, self.root)
        checkpoint = resolve_file(checkpoint, self.root, 'checkpoint')
        source = open_checked_video(video, self.limits, video_name)
        return source, texts, config, checkpoint, video_name or osp.basename(video)

    def run(self,
            video: Optional[str],
            expressions: Optional[str],
            config: Optional[str],
            checkpoint: Optional[str],
            use_judo: bool = False,
            video_name: Optional[str] = None,
            progress: Optional[ProgressFn] = None) -> DemoResult:
        """Check a request, segment every expression in the video and pack the outputs.

        Args:
            video (str): video file or frame folder on the server (an upload's path).
            expressions (str): one expression per line.
            config (str): config file (as given or relative to the repository) or a metafile
                model name.
            checkpoint (str): checkpoint file; empty: random weights (with a warning).
            use_judo (bool): segment the bundled judo frames instead of ``video``.
            video_name (str, optional): the upload's own file name (for messages).
            progress (callable, optional): ``progress(fraction, description)``.

        Raises:
            WebUIError: a bad request (nothing written).
        """
        report = progress or (lambda fraction, desc: None)
        with self._lock:
            report(0.0, 'checking the request')
            source, texts, config, checkpoint, label = self.check(video, expressions, config,
                                                                  checkpoint, use_judo, video_name)
            notes = []
            if checkpoint is None:
                notes.append('warning: no checkpoint: the model has random weights, its masks '
                             'mean nothing (run `make demo` or give a checkpoint)')
            report(0.02, 'loading the model')
            inferencer = self.inferencer(config, checkpoint)
            run_dir = self._new_run_dir()
            inferencer.report = report
            t0 = time.time()
            try:
                result = inferencer(source, texts, out_dir=run_dir, video_format='mp4')
            except Exception as err:  # noqa: B902
                if not is_clear_error(err):
                    raise
                raise WebUIError(
                    _display_name(getattr(source, 'description', ''), label)(
                        f'{err} (no masks were written: the model reads every frame before it '
                        'writes the first mask)')) from None
            finally:
                inferencer.report = None
            seconds = time.time() - t0
            report(0.97, 'packing the masks')
            json_path = osp.join(run_dir, 'results.json')
            zip_path = pack_results(run_dir, run_dir + '.zip')
            overlay = browser_video(
                osp.join(run_dir, 'overlay.mp4'), osp.join(run_dir, 'overlay.webm'))
            if overlay is None:
                notes.append('note: this OpenCV cannot write WebM, the overlay is in the zip '
                             'only')
            report(1.0, 'done')
        lines = notes + [
            f'{label}: {len(source)} frames of {source.size[0]}x{source.size[1]}, '
            f'{len(texts)} expression(s), {seconds:.1f} s', f'model: {config}',
            f'checkpoint: {checkpoint or "none (random weights)"}'
        ]
        for pred in result['predictions']:
            masks = pred['masks']
            on = int(masks.reshape(len(masks), -1).any(1).sum())
            lines.append(f'- "{pred["text"]}": mean score {pred["scores"].mean():.3f}, '
                         f'a mask on {on}/{len(source)} frames')
        return DemoResult(
            run_dir=run_dir,
            zip_path=zip_path,
            json_path=json_path,
            overlay=overlay,
            predictions=result['predictions'],
            status='\n'.join(lines),
            warnings=notes)

    def _new_run_dir(self) -> str:
        """A run folder name that does not exist yet (the inferencer creates it)."""
        os.makedirs(self.work_dir, exist_ok=True)
        base = osp.join(self.work_dir, time.strftime('run-%Y%m%d-%H%M%S'))
        path, n = base, 1
        while osp.exists(path) or osp.exists(path + '.zip'):
            n += 1
            path = f'{base}-{n}'
        return path


# ---------------------------------------------------------------------------- outputs
def pack_results(run_dir: str, zip_path: str) -> str:
    """Zip ``exp<i>/<frame>.png`` and ``results.json`` of ``run_dir`` (paths relative to it)
    into ``zip_path``, written beside it first and renamed once complete.

    Raises:
        FileExistsError: ``zip_path`` exists (it is never replaced).
    """
    if osp.exists(zip_path):
        raise FileExistsError(f'{zip_path} exists')
    members = sorted(glob.glob(osp.join(run_dir, 'exp*', '*.png')))
    members.append(osp.join(run_dir, 'results.json'))
    partial = zip_path + '.partial'
    try:
        with zipfile.ZipFile(partial, 'w', zipfile.ZIP_DEFLATED) as zf:
            for path in members:
                zf.write(path, osp.relpath(path, run_dir))
        os.replace(partial, zip_path)
    finally:
        if osp.exists(partial):
            os.remove(partial)
    return zip_path


def read_masks_zip(zip_path: str) -> Dict[str, Dict[str, 'object']]:
    """The masks of a demo zip: ``{'exp<i>': {frame name: (H, W) bool}}`` (PNG > 127)."""
    import io

    import numpy as np
    from PIL import Image
    out: Dict[str, Dict[str, object]] = {}
    with zipfile.ZipFile(zip_path) as zf:
        for name in sorted(zf.namelist()):
            if not name.endswith('.png'):
                continue
            exp, frame = name.split('/')[-2], osp.splitext(name.split('/')[-1])[0]
            img = np.asarray(Image.open(io.BytesIO(zf.read(name))).convert('L'))
            out.setdefault(exp, {})[frame] = img > 127
    return out


def browser_video(src: str, dst: str) -> Optional[str]:
    """Re-encode ``src`` (OpenCV's MPEG-4 part 2 mp4, which browsers do not play) to a VP8
    WebM that they play; None when this OpenCV cannot write one (no file is left then)."""
    import cv2
    reader = cv2.VideoCapture(src)
    fps = reader.get(cv2.CAP_PROP_FPS) or 6.0
    writer = None
    ok = False
    try:
        while True:
            got, frame = reader.read()
            if not got:
                break
            if writer is None:
                writer = cv2.VideoWriter(dst, cv2.VideoWriter_fourcc(*'VP80'), fps,
                                         (frame.shape[1], frame.shape[0]))
                if not writer.isOpened():
                    return None
            writer.write(frame)
            ok = True
    finally:
        reader.release()
        if writer is not None:
            writer.release()
        if not ok and osp.exists(dst):
            os.remove(dst)
    return dst if ok and osp.getsize(dst) > 0 else None


__all__ = [
    'WebUIBackend', 'WebUIError', 'Limits', 'DemoResult', 'parse_expressions', 'open_checked_video',
    'resolve_config', 'resolve_file', 'find_demo_checkpoint', 'default_model', 'config_choices',
    'judo_frames', 'pack_results', 'read_masks_zip', 'checkpoint_error', 'browser_video',
    'TINY_CONFIG', 'DEMO_CONFIG', 'JUDO_FRAMES'
]

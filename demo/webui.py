"""Web demo of mmrvos (gradio): upload a video (or pick the bundled DAVIS judo frames), type
referring expressions, see the overlay video and download the masks.

    python demo/webui.py [--config CONFIG] [--checkpoint CKPT] [--port 7860] [--host 127.0.0.1]
        [--device cpu|cuda] [--max-frames 300] [--max-pixels 120000000] [--max-upload-mb 200]
        [--work-dir DIR]

then open http://127.0.0.1:7860. Defaults: the checkpoint of ``make demo`` with its config
when ``outputs/demo/*/stage2_referdino/iter_*.pth`` exists, else the tiny config with random
weights (the page says so). Each run writes a new folder under ``--work-dir`` (default: a
new temporary folder): masks ``exp<i>/<frame>.png``, ``overlay.mp4`` / ``overlay.webm``,
``results.json``, and a zip of the masks and the JSON. The work is done by
:mod:`mmrvos.apis.webui_backend` (testable without a browser); this file only builds the page.
Needs ``pip install -r requirements/demo.txt``. Errors at start-up print ``error: ...`` and
exit with status 2 (``MMRVOS_DEBUG=1`` shows the traceback).
"""
import argparse
import logging
import os
import os.path as osp
import sys
import tempfile
import traceback

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TITLE = 'mmrvos: referring video object segmentation'


def _positive(kind):

    def parse(value):
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f'not a number: {value!r}') from None
        if not number > 0:
            raise argparse.ArgumentTypeError(f'must be > 0, got {value}')
        return number

    return parse


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='mmrvos web demo (gradio): video + expressions '
                                '-> overlay video, masks (zip of PNGs) and results.json')
    p.add_argument(
        '--config',
        help='default config of the page (default: the make demo '
        "checkpoint's config, else the tiny config)")
    p.add_argument(
        '--checkpoint',
        help='default checkpoint of the page (default: the newest '
        'make demo checkpoint under outputs/demo/, else none: random weights)')
    p.add_argument('--host', default='127.0.0.1', help='address to listen on')
    p.add_argument('--port', type=_positive(int), default=7860)
    p.add_argument('--device', help='cpu, cuda or cuda:N (default: cuda when available)')
    p.add_argument(
        '--max-frames', type=_positive(int), default=300, help='longest video accepted, in frames')
    p.add_argument(
        '--max-pixels',
        type=_positive(int),
        default=120_000_000,
        help='largest video accepted, frames x width x height')
    p.add_argument(
        '--max-upload-mb', type=_positive(float), default=200.0, help='largest upload, in MB')
    p.add_argument(
        '--work-dir', help='where runs are written (default: a new temporary '
        'folder)')
    return p.parse_args(argv)


def build_ui(backend, config: str, checkpoint, judo):
    """The page (a ``gradio.Blocks``): inputs on the left, results on the right.

    Args:
        backend (WebUIBackend): does the work.
        config (str): the config field's default.
        checkpoint (str | None): the checkpoint field's default (None: empty, random weights).
        judo (str | None): the bundled judo frame folder, or None when absent.
    """
    import gradio as gr

    from mmrvos.apis.webui_backend import WebUIError, config_choices

    choices = config_choices(backend.root)
    if config not in choices:
        choices = [config] + choices

    def segment(video, use_judo, expressions, config, checkpoint, progress=gr.Progress()):
        try:
            result = backend.run(
                video,
                expressions,
                config,
                checkpoint,
                use_judo=use_judo,
                video_name=osp.basename(video) if video else None,
                progress=lambda f, d: progress(f, desc=d))
        except WebUIError as err:
            gr.Warning(str(err), title='Error')
            return None, f'error: {err}', None, None
        except Exception as err:  # noqa: B902  a bug: shown briefly, logged in full
            logging.getLogger('mmrvos.webui').error(traceback.format_exc())
            gr.Warning(f'{type(err).__name__}: {err}', title='Internal error')
            return (None, f'internal error: {type(err).__name__}: {err} (traceback in the '
                    'server log)', None, None)
        return result.overlay, result.status, result.zip_path, result.json_path

    with gr.Blocks(title=TITLE, analytics_enabled=False) as ui:
        gr.Markdown(f'## {TITLE}\nUpload a video, type one expression per line, press '
                    '**Segment**. Each expression is segmented in every frame.')
        if checkpoint is None:
            gr.Markdown(
                '**Warning: no checkpoint** (no `make demo` checkpoint under '
                '`outputs/demo/`): the model has random weights and its masks mean '
                'nothing. Run `make demo`, or give a checkpoint below.',
                elem_id='weights-warning')
        with gr.Row():
            with gr.Column():
                video = gr.Video(label='Video', sources=['upload'], elem_id='video-input')
                use_judo = gr.Checkbox(
                    label='Use the bundled DAVIS judo frames instead' +
                    ('' if judo else ' (not found beside this checkout)'),
                    value=False,
                    interactive=judo is not None,
                    elem_id='use-judo')
                expressions = gr.Textbox(
                    label='Expressions (one per line)',
                    lines=3,
                    elem_id='expressions',
                    placeholder='the person in white\nthe referee')
                with gr.Accordion('Model', open=True):
                    config_box = gr.Dropdown(
                        choices,
                        value=config,
                        label='Config',
                        allow_custom_value=True,
                        elem_id='config')
                    checkpoint_box = gr.Textbox(
                        value=checkpoint or '',
                        label='Checkpoint (empty: random weights)',
                        elem_id='checkpoint')
                limits = backend.limits
                gr.Markdown(f'Limits: {limits.max_frames} frames, '
                            f'{limits.max_pixels / 1e6:.0f} M pixels (frames x width x '
                            f'height), {limits.max_upload_mb:g} MB upload. A video the '
                            'browser cannot preview (e.g. MPEG-4 part 2, AVI) is segmented '
                            'all the same.')
                run = gr.Button('Segment', variant='primary', elem_id='run-button')
            with gr.Column():
                overlay = gr.Video(label='Overlay', interactive=False, elem_id='overlay')
                status = gr.Textbox(label='Status', lines=6, interactive=False, elem_id='status')
                masks = gr.File(
                    label='Masks (zip of PNGs + results.json)',
                    interactive=False,
                    elem_id='masks-zip')
                results = gr.File(label='results.json', interactive=False, elem_id='results-json')
        run.click(
            segment, [video, use_judo, expressions, config_box, checkpoint_box],
            [overlay, status, masks, results],
            concurrency_limit=1)
    return ui


def theme():
    """gradio's default theme on the system's fonts (the page loads nothing from outside)."""
    import gradio as gr
    return gr.themes.Default(
        font=['ui-sans-serif', 'system-ui', 'sans-serif'], font_mono=['ui-monospace', 'monospace'])


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ValueError('gradio is not installed: pip install -r requirements/demo.txt') \
            from None
    from mmrvos.apis import check_device
    from mmrvos.apis.webui_backend import (Limits, WebUIBackend, WebUIError, default_model,
                                           judo_frames, resolve_config, resolve_file)
    config, checkpoint = default_model(ROOT)
    config = args.config or config
    checkpoint = args.checkpoint or checkpoint
    try:  # the defaults of the page must exist
        resolve_config(config, ROOT)
        resolve_file(checkpoint, ROOT, 'checkpoint')
    except WebUIError as err:
        raise ValueError(str(err)) from None
    if args.device:
        check_device(args.device)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='mmrvos-webui-')
    backend = WebUIBackend(ROOT, work_dir,
                           Limits(args.max_frames, args.max_pixels, args.max_upload_mb),
                           args.device)
    ui = build_ui(backend, config, checkpoint, judo_frames(ROOT))
    print(
        f'[webui] config {config}, checkpoint {checkpoint or "none (random weights)"}; '
        f'runs go to {work_dir}',
        flush=True)
    try:
        ui.queue(default_concurrency_limit=1).launch(
            server_name=args.host,
            server_port=args.port,
            show_error=True,
            inbrowser=False,
            theme=theme(),
            max_file_size=f'{args.max_upload_mb:g}mb',
            allowed_paths=[work_dir],
            footer_links=[])
    except OSError as err:
        if not args.work_dir and not os.listdir(work_dir):
            os.rmdir(work_dir)  # ours, still empty
        if 'empty port' in str(err):
            raise OSError(f'cannot listen on {args.host}:{args.port} (in use, or not '
                          'allowed): choose another --port') from None
        raise


if __name__ == '__main__':
    sys.path.insert(0, ROOT)  # mmrvos of this checkout when it is not installed
    from mmrvos.apis.cli import run_cli
    sys.exit(run_cli(main))

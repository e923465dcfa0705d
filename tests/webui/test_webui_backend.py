"""The web demo's work without a browser (mmrvos.apis.webui_backend): a run's zip holds
RVOSInferencer's masks for the same video and checkpoint; every bad request (unreadable video,
no expression, a video over the limits, a missing config or checkpoint, an incomplete
checkpoint) is refused with a message naming the file and the problem, before anything is
written; ``python demo/webui.py`` refuses bad start-up arguments as a user sees it."""
import json
import os
import os.path as osp
import zipfile

import cv2
import numpy as np
import pytest
from rvos_shell import TOY_CONFIG, assert_clean_error, run_tool, write_frames
from webui_helpers import encode_video, make_tiny_checkpoint

from mmrvos.apis.webui_backend import (DEMO_CONFIG, TINY_CONFIG, Limits, WebUIBackend, WebUIError,
                                       default_model, find_demo_checkpoint, open_checked_video,
                                       parse_expressions, read_masks_zip, resolve_config,
                                       resolve_file)
from rvos_test_utils import REPO_ROOT


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth'))


@pytest.fixture(scope='module')
def video(tmp_path_factory):
    """A 3-frame 64x48 mp4 (a moving square on a gradient)."""
    folder = tmp_path_factory.mktemp('video')
    frames = write_frames(str(folder / 'frames'), [f'{i:05d}.png' for i in range(3)])
    return encode_video(frames, str(folder / 'clip.mp4'))


@pytest.fixture(scope='module')
def backend(tmp_path_factory):
    return WebUIBackend(REPO_ROOT, str(tmp_path_factory.mktemp('runs') / 'work'), device='cpu')


def listing(folder):
    return sorted(os.listdir(folder)) if osp.isdir(folder) else []


# ---------------------------------------------------------------------------- a run
def test_run_zip_holds_inferencer_masks(backend, video, checkpoint):
    """The zip's PNGs are RVOSInferencer's masks (same video, config, checkpoint), one per
    expression and frame; results.json names the expressions; the WebM overlay decodes to
    every frame; progress rises from 0 to 1; a second run writes a new folder and leaves the
    first as it was."""
    from mmrvos.apis import RVOSInferencer
    texts = ['the red square', 'the background']
    seen = []
    result = backend.run(
        video,
        '\n  the red square \n\n the background\n',
        TOY_CONFIG,
        checkpoint,
        progress=lambda f, d: seen.append(f))
    ref = RVOSInferencer(
        osp.join(REPO_ROOT, TOY_CONFIG), weights=checkpoint, device='cpu',
        show_progress=False)(video, texts)['predictions']

    with zipfile.ZipFile(result.zip_path) as zf:
        names = sorted(zf.namelist())
        summary = json.loads(zf.read('results.json'))
    assert names == [
        'exp0/00000.png', 'exp0/00001.png', 'exp0/00002.png', 'exp1/00000.png', 'exp1/00001.png',
        'exp1/00002.png', 'results.json'
    ]
    assert [e['text'] for e in summary['expressions']] == texts
    masks = read_masks_zip(result.zip_path)
    for i, pred in enumerate(ref):
        assert pred['masks'].shape == (3, 48, 64)
        got = np.stack([masks[f'exp{i}'][f'{t:05d}'] for t in range(3)])
        np.testing.assert_array_equal(got, pred['masks'])
    assert json.load(open(result.json_path)) == summary

    cap = cv2.VideoCapture(result.overlay)
    count = 0
    while cap.grab():
        count += 1
    cap.release()
    assert result.overlay.endswith('.webm') and count == 3

    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen), seen
    assert 'warning' not in result.status and 'clip.mp4: 3 frames of 64x48' in result.status

    before = {
        n: open(osp.join(result.run_dir, 'exp0', n), 'rb').read()
        for n in os.listdir(osp.join(result.run_dir, 'exp0'))
    }
    again = backend.run(video, 'the red square', TOY_CONFIG, '', progress=None)
    assert again.run_dir != result.run_dir and again.zip_path != result.zip_path
    assert {n: open(osp.join(result.run_dir, 'exp0', n), 'rb').read() for n in before} == before
    assert again.status.startswith('warning: no checkpoint: the model has random weights')


# ---------------------------------------------------------------------------- bad requests
def test_parse_expressions():
    assert parse_expressions(' a man \r\n\n  the referee\n') == ['a man', 'the referee']
    for text in ('', '   \n\t\n', None):
        with pytest.raises(WebUIError, match='no expression'):
            parse_expressions(text)


def test_unreadable_video_named_by_its_own_name(tmp_path):
    """A file that is no video, and a truncated mp4: the message names the upload's own
    file name, not the server's temporary path."""
    bad = tmp_path / 'upload-123' / 'holiday.mp4'
    bad.parent.mkdir()
    bad.write_bytes(b'this is not a video\n' * 50)
    with pytest.raises(WebUIError) as err:
        open_checked_video(str(bad), Limits(), name='holiday.mp4')
    assert str(err.value) == 'holiday.mp4: not a readable video (no frame could be decoded)'

    frames = write_frames(str(tmp_path / 'f'), [f'{i}.png' for i in range(3)])
    good = encode_video(frames, str(tmp_path / 'good.mp4'))
    cut = tmp_path / 'cut.mp4'
    cut.write_bytes(open(good, 'rb').read()[:200])
    with pytest.raises(WebUIError, match=r'^cut\.mp4: not a readable video'):
        open_checked_video(str(cut), Limits(), name='cut.mp4')
    with pytest.raises(WebUIError, match='no video: upload one'):
        open_checked_video(None, Limits())


def test_video_over_the_limits(video):
    """3 frames of 64x48 = 9216 pixels: refused by a 2-frame limit and by a 9215-pixel one,
    accepted at exactly 9216."""
    with pytest.raises(
            WebUIError,
            match=r'clip\.mp4: 3 frames is over the limit of this demo '
            r'\(2 frames, --max-frames\)'):
        open_checked_video(video, Limits(max_frames=2), name='clip.mp4')
    with pytest.raises(
            WebUIError,
            match=r'clip\.mp4: 3 frames of 64x48 = 9,216 pixels is '
            r'over the limit of this demo \(9,215 pixels, --max-pixels\)'):
        open_checked_video(video, Limits(max_pixels=3 * 64 * 48 - 1), name='clip.mp4')
    assert len(open_checked_video(video, Limits(max_pixels=3 * 64 * 48))) == 3
    with pytest.raises(ValueError, match='max_frames must be a positive number'):
        Limits(max_frames=0)


def test_missing_config_and_checkpoint(tmp_path):
    with pytest.raises(WebUIError, match=r'^config not found: configs/nope\.py$'):
        resolve_config('configs/nope.py', REPO_ROOT)
    with pytest.raises(WebUIError, match='no config'):
        resolve_config('  ', REPO_ROOT)
    assert resolve_config(TOY_CONFIG, REPO_ROOT) == osp.join(REPO_ROOT, TOY_CONFIG)
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(WebUIError, match=f'^checkpoint not found: {missing}$'):
        resolve_file(missing, REPO_ROOT, 'checkpoint')
    assert resolve_file('', REPO_ROOT, 'checkpoint') is None


@pytest.mark.parametrize('case', [
    'empty text', 'unreadable video', 'too large', 'missing config', 'missing checkpoint',
    'no video', 'unreadable checkpoint', 'incomplete checkpoint'
])
def test_bad_request_writes_nothing(case, tmp_path, video, checkpoint):
    """Each bad request raises WebUIError with its message; the work folder stays empty
    (checks come before the run folder is made; a failing model build writes nothing)."""
    import torch
    work = str(tmp_path / 'work')
    limits = Limits(max_pixels=1000) if case == 'too large' else Limits()
    backend = WebUIBackend(REPO_ROOT, work, limits, device='cpu')
    bad = tmp_path / 'bad.avi'
    bad.write_bytes(b'\x00' * 4096)
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'not a checkpoint' * 10)
    partial = str(tmp_path / 'partial.pth')
    torch.save({'state_dict': {'not_a_parameter': torch.zeros(1)}}, partial)
    args = dict(video=video, expressions='the red square', config=TOY_CONFIG, checkpoint=checkpoint)
    expected = {
        'empty text': (dict(expressions=' \n '), 'no expression'),
        'unreadable video': (dict(video=str(bad)), 'bad.avi: not a readable video'),
        'too large': (dict(), 'clip.mp4: 3 frames of 64x48 = 9,216 pixels is over the limit '
                      'of this demo (1,000 pixels, --max-pixels)'),
        'missing config':
        (dict(config='configs/referdino/nope.py'), 'config not found: configs/referdino/nope.py'),
        'missing checkpoint':
        (dict(checkpoint='ckpts/nope.pth'), 'checkpoint not found: ckpts/nope.pth'),
        'no video': (dict(video=None), 'no video'),
        'unreadable checkpoint': (dict(checkpoint=str(junk)), str(junk)),
    }
    if case == 'incomplete checkpoint':
        args.update(checkpoint=partial)
        with pytest.raises(WebUIError) as err:
            backend.run(**args)
        assert str(err.value).startswith(
            f'checkpoint {partial} does not fit the model of {osp.join(REPO_ROOT, TOY_CONFIG)}:'
            ' ') and 'parameter(s) of the model are missing from it (e.g. ' in str(err.value)
        assert '1 of its entries are not in the model (e.g. not_a_parameter)' in str(err.value)
        assert len(str(err.value)) < 600
    else:
        update, message = expected[case]
        args.update(update)
        with pytest.raises(WebUIError) as err:
            backend.run(**args)
        assert message in str(err.value)
    assert listing(work) == [] and listing(str(tmp_path)) == sorted(
        ['bad.avi', 'junk.pth', 'partial.pth'])


# ---------------------------------------------------------------------------- defaults
def test_default_model_finds_the_newest_demo_checkpoint(tmp_path):
    root = str(tmp_path)
    assert default_model(root) == (TINY_CONFIG, None)
    for stamp, it in (('20240101-000000', 300), ('20250101-000000', 50), ('20250101-000000', 300),
                      ('20230101-000000', 900)):
        d = tmp_path / 'outputs' / 'demo' / stamp / 'stage2_referdino'
        d.mkdir(parents=True, exist_ok=True)
        (d / f'iter_{it}.pth').write_bytes(b'')
    newest = osp.join('outputs', 'demo', '20250101-000000', 'stage2_referdino', 'iter_300.pth')
    assert find_demo_checkpoint(root) == osp.join(root, newest)
    assert default_model(root) == (DEMO_CONFIG, newest)
    assert osp.isfile(osp.join(REPO_ROOT, DEMO_CONFIG))


# ---------------------------------------------------------------------------- the command
@pytest.mark.parametrize('args,fragment', [
    (['--checkpoint', 'checkpoints/nope.pth'], 'checkpoint not found: checkpoints/nope.pth'),
    (['--config', 'configs/nope.py'], 'config not found: configs/nope.py'),
])
def test_command_refuses_missing_files(args, fragment):
    """``python demo/webui.py`` as a user runs it: ``error: ...``, exit 2, no traceback,
    before a server starts."""
    pytest.importorskip('gradio', reason='gradio not installed (requirements/demo.txt)')
    proc = run_tool(['demo/webui.py', *args, '--port', '1'], timeout=300)
    assert_clean_error(proc, fragment)


def test_judo_choice(tmp_path, judo_root):
    """The judo box reads the frames beside the repository where they are (16 frames of
    854x480, named 'judo' in messages); where they are absent the request is refused."""
    backend = WebUIBackend(REPO_ROOT, str(tmp_path / 'work'))
    source, texts, config, ckpt, label = backend.check(
        None, 'a judoka', TOY_CONFIG, '', use_judo=True)
    assert label == 'judo' and texts == ['a judoka'] and ckpt is None
    assert osp.samefile(source.description, osp.join(judo_root, 'JPEGImages', 'judo'))
    assert len(source) == 16 and source.size == (854, 480)
    elsewhere = WebUIBackend(str(tmp_path / 'clone'), str(tmp_path / 'work'))
    with pytest.raises(WebUIError, match='the bundled judo frames are not here'):
        elsewhere.check(None, 'a judoka', osp.join(REPO_ROOT, TOY_CONFIG), '', use_judo=True)
    assert listing(str(tmp_path / 'work')) == []


def test_import_needs_no_gradio():
    """``import mmrvos`` and the backend work where gradio cannot be imported."""
    proc = run_tool([
        '-c', "import sys; sys.modules['gradio'] = None; import mmrvos; "
        'import mmrvos.apis.webui_backend as b; print(b.TINY_CONFIG)'
    ],
                    timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == TOY_CONFIG, proc.stderr[-2000:]


def test_command_port_in_use(tmp_path):
    """A port already taken: ``error: cannot listen on ...``, exit 2, no traceback, and the
    temporary work folder the demo made is removed again (it is empty; gradio's own cache
    folder is gradio's)."""
    import socket
    pytest.importorskip('gradio', reason='gradio not installed (requirements/demo.txt)')
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_tool(['demo/webui.py', '--port', str(port)],
                        timeout=300,
                        env=dict(TMPDIR=str(tmp_path)))
    assert_clean_error(proc, f'cannot listen on 127.0.0.1:{port}', '--port')
    assert [n for n in listing(str(tmp_path)) if n.startswith('mmrvos-webui-')] == []


def test_project_configs_are_offered_and_run(backend, video):
    """The projects' configs are in the config choice (each parses as the web demo loads it),
    and a run with one (MPG-SAM 2 tiny, no checkpoint) gives a mask per expression and frame."""
    from mmrvos.apis.config import load_config
    from mmrvos.apis.webui_backend import config_choices
    choices = config_choices(REPO_ROOT)
    project = [c for c in choices if c.startswith('projects')]
    assert {c.split(os.sep)[1] for c in project} == {'MPG-SAM2', 'ReferFormer'}
    assert choices.index(TINY_CONFIG) < choices.index(project[0])  # ReferDINO's first
    for config in choices:
        assert load_config(osp.join(REPO_ROOT, config)).model.type
    seen = []
    result = backend.run(
        video,
        'the red square\nthe background',
        'projects/MPG-SAM2/configs/mpg_sam2_tiny_toy-rvos.py',
        '',
        progress=lambda f, d: seen.append(f))
    masks = read_masks_zip(result.zip_path)
    assert sorted(masks) == ['exp0', 'exp1']
    assert all(sorted(m) == ['00000', '00001', '00002'] for m in masks.values())
    assert masks['exp0']['00000'].shape == (48, 64)
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen), seen

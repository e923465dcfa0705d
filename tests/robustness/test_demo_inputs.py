"""Bad input to the demo (frames, expressions, options, configs) as a user gives it: a clear
``error: ...`` naming the problem, exit status 2, no traceback, and no output folder; and the
lazy reader behind it (reads one chunk at a time, gives the same result as the whole-video
tensor)."""
import json
import os
import os.path as osp
import warnings

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from rvos_shell import (JUDO_FRAMES, TOY_CONFIG, assert_clean_error, assert_ok, assert_usage_error,
                        run_tool, write_frames)

from rvos_test_utils import REPO_ROOT


def _demo(video, *extra, texts=('the red square', ), out=None):
    args = [
        'tools/demo.py',
        str(video), '--config', TOY_CONFIG, '--out-dir',
        str(out), '--scale', '64', '48', *extra
    ]
    for t in texts:
        args += ['--text', t]
    return run_tool(args)


@pytest.fixture
def frames(tmp_path):
    folder = tmp_path / 'frames'
    write_frames(str(folder), [f'{i:05d}.jpg' for i in range(3)])
    return folder


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


@pytest.mark.parametrize('ext', ['jpg', 'png'])
def test_truncated_frame_is_refused(tmp_path, ext):
    """OpenCV decodes a cut JPEG/PNG without complaint (missing rows grey): the end marker
    (JPEG EOI, PNG IEND) tells."""
    folder = tmp_path / 'frames'
    write_frames(str(folder), [f'{i:05d}.{ext}' for i in range(3)])
    _truncate(folder / f'00001.{ext}')
    out = tmp_path / 'out'
    marker = 'end-of-image' if ext == 'jpg' else 'IEND'
    assert_clean_error(_demo(folder, out=out), f'00001.{ext}', marker, 'truncated')
    assert not out.exists()


def test_frames_of_mixed_sizes_are_refused(tmp_path, frames):
    write_frames(str(frames), ['00003.jpg'], size=(80, 48))
    write_frames(str(frames), ['00004.jpg'], size=(64, 40))
    out = tmp_path / 'out'
    assert_clean_error(_demo(frames, out=out), '00003.jpg', '80x48', '00000.jpg', '64x48')
    assert not out.exists()


def test_two_files_of_one_frame_are_refused(tmp_path, frames):
    write_frames(str(frames), ['00001.png'])
    out = tmp_path / 'out'
    assert_clean_error(_demo(frames, out=out), "'00001'", '00001.jpg', '00001.png')
    assert not out.exists()


@pytest.mark.parametrize('extra,message', [
    (['--fps', '0'], 'must be > 0'),
    (['--fps', '-2'], 'must be > 0'),
    (['--fps', 'nan'], 'must be > 0'),
    (['--scale', '0', '0'], 'must be > 0'),
    (['--text', '   '], 'empty expression'),
])
def test_bad_options_are_usage_errors(tmp_path, frames, extra, message):
    out = tmp_path / 'out'
    assert_usage_error(_demo(frames, *extra, out=out), message)
    assert not out.exists()


def test_refine_options(tmp_path, frames):
    """--refine SAM2_DIR: a folder that is not there, or with --stream, is a usage error; a
    local SAM 2 checkpoint (here a tiny random one, saved as safetensors) refines the run."""
    out = tmp_path / 'out'
    missing = tmp_path / 'no_sam2'
    assert_usage_error(_demo(frames, '--refine', missing, out=out), 'no_sam2', 'not a folder')
    assert_usage_error(
        _demo(frames, '--refine', tmp_path, '--stream', '--video-format', 'mp4', out=out),
        'not with --stream')
    assert not out.exists()
    from transformers import Sam2VideoConfig, Sam2VideoModel

    from rvos_test_utils import TINY_SAM2
    sam2_dir = tmp_path / 'sam2'
    torch.manual_seed(0)
    Sam2VideoModel(Sam2VideoConfig(**TINY_SAM2)).save_pretrained(str(sam2_dir))
    assert not list(sam2_dir.glob('*.bin'))  # safetensors: loading runs no pickle
    assert_ok(_demo(frames, '--refine', sam2_dir, out=out))
    assert sorted(os.listdir(out / 'exp0')) == ['00000.png', '00001.png', '00002.png']
    assert json.load(open(out / 'results.json'))['expressions'][0]['frames']


def test_checkpoint_of_another_model_is_a_short_clear_error(tmp_path, frames):
    """mmengine's strict loading lists every key (thousands of lines for another model's
    checkpoint): the demo names the file, the config and what does not fit, in one line."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    state = MODELS.build(Config.fromfile(osp.join(REPO_ROOT, TOY_CONFIG)).model).state_dict()
    first = sorted(state)[0]
    del state[first]
    state['head.of.another.model'] = torch.zeros(3)
    resized = sorted(k for k, v in state.items() if v.ndim == 2)[0]
    state[resized] = torch.zeros(state[resized].shape[0] + 1, state[resized].shape[1])
    ckpt = tmp_path / 'other.pth'
    torch.save({'state_dict': state}, ckpt)
    out = tmp_path / 'out'
    proc = _demo(frames, '--weights', ckpt, out=out)
    assert_clean_error(proc, f'checkpoint {ckpt} does not fit the model of', TOY_CONFIG,
                       f'1 parameter(s) of the model are missing from it (e.g. {first})',
                       '1 of its entries are not in the model (e.g. head.of.another.model)',
                       f'1 shape mismatch(es) (e.g. size mismatch for {resized}')
    assert len(proc.stderr.splitlines()) < 10 and len(proc.stderr) < 1500
    assert not out.exists()


def test_unavailable_device(tmp_path, frames):
    out = tmp_path / 'out'
    if not torch.cuda.is_available():
        assert_clean_error(_demo(frames, '--device', 'cuda', out=out), 'CUDA is not available')
    assert_clean_error(_demo(frames, '--device', 'gpu', out=out), "invalid device 'gpu'")
    assert not out.exists()


@pytest.mark.parametrize('name,content,message', [
    ('model.txt', 'model = dict()', 'not a config file'),
    ('model.json', '{"a": 1}', "no 'model' entry"),
    ('broken.py', 'model = dict(\n', 'cannot read the config'),
    ('missing.py', None, 'config not found'),
])
def test_a_config_that_is_not_a_config(tmp_path, frames, name, content, message):
    config = tmp_path / name
    if content is not None:
        config.write_text(content)
    out = tmp_path / 'out'
    proc = run_tool([
        'tools/demo.py',
        str(frames), '--text', 'a', '--config',
        str(config), '--out-dir',
        str(out)
    ])
    assert_clean_error(proc, name, message)
    assert not out.exists()


def test_missing_inputs(tmp_path, frames):
    out = tmp_path / 'out'
    assert_clean_error(_demo(tmp_path / 'nowhere', out=out), 'nowhere', 'no such video')
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert_clean_error(_demo(empty, out=out), 'holds no frames')
    assert_clean_error(
        _demo(frames, '--checkpoint', str(tmp_path / 'w.pth'), out=out), 'checkpoint not found',
        'w.pth')
    assert not out.exists()


def test_unpadded_frame_numbers_and_a_long_expression(tmp_path):
    """``1.jpg, 2.jpg, 10.jpg`` play in numeric order (alphabetical would put 10 second), with
    a warning; an expression longer than the text model reads is cut with a warning."""
    folder = tmp_path / 'frames'
    write_frames(str(folder), ['1.jpg', '2.jpg', '10.jpg'])
    out = tmp_path / 'out'
    long_text = ' '.join(['the small red square moving to the right'] * 40)
    proc = _demo(folder, out=out, texts=('the red square', long_text))
    assert_ok(proc)
    assert 'not zero-padded' in proc.stderr and 'numeric order' in proc.stderr
    assert 'tokens' in proc.stderr and 'dropped' in proc.stderr
    summary = json.load(open(out / 'results.json'))
    assert [f['frame'] for f in summary['expressions'][0]['frames']] == ['1', '2', '10']
    assert sorted(os.listdir(out / 'exp1')) == ['1.png', '10.png', '2.png']


# ----------------------------------------------------------------- the reader, in-process
def test_natural_order_and_warning(tmp_path):
    from mmrvos.apis import FrameOrderWarning, open_video
    folder = tmp_path / 'f'
    write_frames(str(folder), ['frame_1.jpg', 'frame_10.jpg', 'frame_2.jpg'])
    with pytest.warns(FrameOrderWarning, match='frame_1.jpg, frame_2.jpg, frame_10.jpg'):
        assert open_video(str(folder)).names == ['frame_1', 'frame_2', 'frame_10']
    padded = tmp_path / 'p'
    write_frames(str(padded), ['00009.jpg', '00010.jpg'])
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert open_video(str(padded)).names == ['00009', '00010']


def test_video_file_reader(tmp_path):
    from mmrvos.apis import open_video
    path = str(tmp_path / 'v.avi')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 5, (64, 48))
    for i in range(6):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    video = open_video(path)
    assert len(video) == 6 and video.size == (64, 48) and video.names[0] == '00000'
    means = [f.mean() for f in video.iter_frames()]
    assert np.allclose(means, [40 * i for i in range(6)], atol=3)
    # a read that starts before the last position (the model's second pass) reopens the file
    assert np.isclose(video.read(2).mean(), 80, atol=3)
    assert [round(f.mean() / 40) for f in video.iter_frames(4, 6)] == [4, 5]


def test_read_image_strict(tmp_path):
    from mmrvos.fileio import read_image_strict
    write_frames(str(tmp_path), ['a.png', 'b.jpg'])
    for name in ('a.png', 'b.jpg'):
        assert read_image_strict(str(tmp_path / name)).shape == (48, 64, 3)
        _truncate(tmp_path / name)
        with pytest.raises(OSError, match=name):
            read_image_strict(str(tmp_path / name))
    (tmp_path / 'c.jpg').write_bytes(b'\xff\xd8 not really a jpeg \xff\xd9')
    with pytest.raises(OSError, match='cannot decode'):
        read_image_strict(str(tmp_path / 'c.jpg'))


def test_gif_overlay_is_bounded(tmp_path):
    from mmrvos.visualization import OverlayVideoWriter
    path = str(tmp_path / 'o.gif')
    writer = OverlayVideoWriter(path, num_frames=12, fps=4, gif_max_frames=5)
    kept = []
    for i in range(12):
        kept.append(writer.keeps(i))
        writer.add(np.full((48, 64, 3), i * 20, np.uint8) if kept[-1] else None)
    writer.close()
    gif = Image.open(path)
    assert gif.n_frames == 4 and sum(kept) == 4  # every 3rd frame of 12
    assert gif.info['duration'] == 750  # 3 frames at 4 fps: the GIF lasts as the video


def test_lazy_reading_matches_the_whole_video_tensor():
    """The demo's lazy path (frames read, put through the config's test pipeline and the data
    preprocessor per chunk) gives what the model gives on the whole video put through the
    same steps at once, and never reads more than one chunk at once."""
    if not osp.isdir(JUDO_FRAMES):
        pytest.skip('real fixture not found')
    from mmrvos.apis import (LazyVideoTensor, build_video_pipeline, init_rvos_model, open_video,
                             segment_video)
    model = init_rvos_model(osp.join(REPO_ROOT, TOY_CONFIG))
    chunk = model.test_cfg['chunk_size']
    scale = (160, 96)
    text = ['the man in white']
    source = open_video(JUDO_FRAMES)
    assert len(source) > chunk  # several chunks
    pipeline = build_video_pipeline(model.cfg, scale)
    packed = pipeline([
        dict(img_path=p, frame_id=n, frame_index=i)
        for i, (p, n) in enumerate(zip(source.paths, source.names))
    ], 'judo', len(source))
    data = model.data_preprocessor(
        dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]), False)
    inputs, samples = data['inputs'][0], data['data_samples'][0].video_data_samples
    assert tuple(samples[0].img_shape) == (90, 160)  # 854x480 -> long side 160, ratio kept
    with torch.no_grad():
        ref = model.predict_video(inputs, samples, [model.encode_text(text)])[0]
    got = []
    segment_video(model, JUDO_FRAMES, text, got.append, scale)
    assert [g['index'] for g in got] == list(range(len(source)))
    for r, g in zip(ref, got):
        np.testing.assert_array_equal(g['masks'][0], r.masks.any(0).numpy())
        np.testing.assert_allclose(g['boxes'][0], r.bboxes.numpy(), rtol=1e-5, atol=1e-3)
    lazy = LazyVideoTensor(source, pipeline, model.data_preprocessor, 'cpu')
    with torch.no_grad():
        model.predict_video(
            lazy, lazy.frame_samples, [model.encode_text(text)], on_result=lambda e, t, r: None)
    assert lazy.reads and all(stop - start <= chunk for start, stop in lazy.reads)
    torch.testing.assert_close(lazy[0:chunk], inputs[:chunk])

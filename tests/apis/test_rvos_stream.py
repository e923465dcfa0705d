"""RVOSStream (online: one frame in, masks out) against offline ``predict_video``; its state is
bounded; bad frames are refused without changing the stream; ``tools/demo.py --stream`` run
as a user runs it writes masks as they come and keeps them when the input goes bad."""
import contextlib
import json
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from rvos_shell import (JUDO_FRAMES, TOY_CONFIG, assert_clean_error, assert_ok, assert_usage_error,
                        run_tool, snapshot, write_frames)

from rvos_test_utils import JUDO, REPO_ROOT

TEXTS = ['the red square', 'the blue thing on the left']
SCALE = (64, 48)  # working resolution (long, short): small frames, fast tests


def _activate_temporal_decoder(model) -> None:
    """The tiny config's temporal decoder starts gated off (gate 0, zero trajectory MLP
    output), which would make the window irrelevant: open it."""
    dec = model.temporal.temporal_decoder
    with torch.no_grad():
        dec.gate.fill_(0.7)
        torch.manual_seed(1)
        torch.nn.init.normal_(dec.motion_mlp.layers[-1].weight, std=0.2)


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """The tiny model's small ops run faster on one thread (and much faster than two
    threads on a busy machine); results do not depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope='module')
def model():
    from mmrvos.apis import init_rvos_model
    torch.manual_seed(0)
    model = init_rvos_model(osp.join(REPO_ROOT, TOY_CONFIG))
    _activate_temporal_decoder(model)
    # offline then runs frames one at a time, as the stream does (batching changes rounding)
    model.test_cfg['chunk_size'] = 1
    return model


@pytest.fixture(scope='module')
def checkpoint(model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp('ckpt') / 'tiny_stream.pth')
    torch.save({'state_dict': model.state_dict()}, path)
    return path


@pytest.fixture(scope='module')
def frames(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('frames') / 'video')
    return write_frames(folder, [f'{i:05d}.jpg' for i in range(6)], size=(64, 48))


def _run(args, **kwargs):
    """The entry point as a user runs it (one thread: the tiny model's small ops are faster)."""
    return run_tool(args, env={'OMP_NUM_THREADS': '1'}, **kwargs)


def _stream(model, texts=TEXTS, **kwargs):
    from mmrvos.apis import RVOSStream
    return RVOSStream(model, texts, scale=SCALE, **kwargs)


# ---------------------------------------------------------------------------- equality
@contextlib.contextmanager
def _idle_temporal_decoder(model):
    """The temporal decoder as the tiny config initialises it (gate 0, zero trajectory MLP
    output): the identity, so a frame's scores do not depend on the other frames."""
    dec = model.temporal.temporal_decoder
    saved = [p.detach().clone() for p in (dec.gate, dec.motion_mlp.layers[-1].weight)]
    with torch.no_grad():
        dec.gate.zero_()
        dec.motion_mlp.layers[-1].weight.zero_()
    try:
        yield
    finally:
        with torch.no_grad():
            dec.gate.copy_(saved[0])
            dec.motion_mlp.layers[-1].weight.copy_(saved[1])


def _offline_logits(model, paths, text, monkeypatch):
    """(T, Q) track-ordered logits of the offline run (``_track_whole_video``'s output) and
    its inputs."""
    from mmrvos.apis import inference_rvos
    seen = {}
    original = model._track_whole_video

    def record(hidden, ref, text_feats, tmask, times=None):
        out = original(hidden, ref, text_feats, tmask, times)
        seen.update(hidden=hidden, ref=ref, text=text_feats, tmask=tmask, times=times, cls=out[1])
        return out

    monkeypatch.setattr(model, '_track_whole_video', record)
    try:
        inference_rvos(model, paths, [text], scale=SCALE)
    finally:
        monkeypatch.undo()
    return seen


def test_each_frame_equals_offline_on_the_video_cut_at_that_frame(model, frames, monkeypatch):
    """W >= T: the stream's frame t has the track-ordered logits of the last frame of an
    offline run on frames 0..t (causal tracker, temporal decoder over the same frames).
    Offline frame 0 also attends to later frames (the difference streaming pays), and the
    window matters."""
    stream = _stream(model, window=10)
    logits = []
    for path in frames:
        stream.step(path)
        logits.append([cls.clone() for cls in stream.last_logits])
    for e, cut in ((0, 1), (1, 4), (0, 6)):
        offline = _offline_logits(model, frames[:cut], TEXTS[e], monkeypatch)['cls']
        assert offline.shape == (cut, 24)
        torch.testing.assert_close(logits[cut - 1][e], offline[-1], rtol=0, atol=1e-6)
    assert (logits[0][0] - offline[0]).abs().max() > 1e-3  # offline frame 0 of 6 frames
    short = _stream(model, [TEXTS[0]], window=1)
    for path in frames:
        short.step(path)
    assert (short.last_logits[0] - logits[-1][0]).abs().max() > 1e-3


def test_with_an_idle_temporal_decoder_masks_equal_offline_on_the_cut_video(model, frames):
    """Where no frame's scores depend on other frames, the running mean score is offline's
    mean and frame t of the stream is the last frame of the offline result on frames 0..t:
    masks, boxes, scores (for any window)."""
    from mmrvos.apis import inference_rvos
    with _idle_temporal_decoder(model):
        stream = _stream(model, window=2)
        online = [stream.step(path) for path in frames]
        drawn = False
        for cut in (2, 6):
            offline = inference_rvos(model, frames[:cut], TEXTS, scale=SCALE)
            for e, text in enumerate(TEXTS):
                got, ref = online[cut - 1][e], offline[e]
                assert got['mask'].shape == (48, 64) and got['mask'].dtype == bool
                np.testing.assert_array_equal(got['mask'], ref['masks'][-1])
                np.testing.assert_allclose(got['box'], ref['boxes'][-1][0], rtol=0, atol=1e-4)
                assert got['score'] == pytest.approx(float(ref['scores'][-1][0]), abs=1e-6)
                drawn |= bool(got['mask'].any())
    assert drawn  # not a comparison of empty masks only


def test_window_and_delay_covering_the_video_give_the_offline_result(model, frames):
    """W >= T and delay D >= T - 1: every frame is segmented knowing the whole video, as
    offline: the same masks, boxes and scores (temporal decoder active)."""
    from mmrvos.apis import inference_rvos
    stream = _stream(model, window=6, delay=5)
    out = [stream.step(path) for path in frames]
    assert out == [None] * 5 + [out[-1]] and out[-1] is not None
    out = out[-1:] + stream.flush()
    assert stream.flush() == [] and stream.frames_out == 6
    offline = inference_rvos(model, frames, TEXTS, scale=SCALE)
    drawn = False
    for t, frame in enumerate(out):
        for e, got in enumerate(frame):
            assert got['index'] == t and got['frame'] == f'{t:05d}'
            np.testing.assert_array_equal(got['mask'], offline[e]['masks'][t])
            np.testing.assert_allclose(got['box'], offline[e]['boxes'][t][0], rtol=0, atol=1e-4)
            assert got['score'] == pytest.approx(float(offline[e]['scores'][t][0]), abs=1e-6)
            drawn |= bool(got['mask'].any())
    assert drawn


def test_a_delay_outputs_frame_t_minus_d_knowing_the_frames_after_it(model, frames):
    """delay D: step t gives frame t - D (None for the first D frames), flush() the last D;
    frame t - D's logits are those of a D = 0 stream's window ending at frame t (the same
    tracker, the same window), at the frame's position instead of the newest."""
    delayed = _stream(model, [TEXTS[0]], window=3, delay=2)
    got = [delayed.step(path) for path in frames]
    assert got[:2] == [None, None]
    got = got[2:] + delayed.flush()
    assert [g[0]['index'] for g in got] == list(range(6))
    state = delayed._states[0]
    assert len(state.window) == 3 and not delayed._pending
    # the last window's refined queries: the same as a D = 0 stream's after the same frames
    plain = _stream(model, [TEXTS[0]], window=3)
    for path in frames:
        plain.step(path)
    torch.testing.assert_close(state.refined, plain._states[0].refined, rtol=0, atol=0)


def test_window_attends_over_the_last_w_tracked_frames(model, frames, monkeypatch):
    """W < T: frame t's queries are the offline tracker's (over the whole video) refined by
    the temporal decoder over frames t-W+1..t only; the track is the best by mean score so far
    and the score is its score on frame t (reference built from offline pieces)."""
    window, e = 2, 1
    pieces = _offline_logits(model, frames, TEXTS[e], monkeypatch)
    hidden, ref, text, tmask, times = (
        pieces[k] for k in ('hidden', 'ref', 'text', 'tmask', 'times'))
    temporal = model.temporal
    with torch.no_grad():
        perm = temporal.track(hidden[None], text[None], tmask[None], text[None, :, 0], ref[None])
        assert not torch.equal(perm[0], perm[0, :1].expand_as(perm[0]))  # tracks do move
        hs = torch.gather(hidden[None], 2, perm[..., None].expand(-1, -1, -1, hidden.shape[-1]))
        refs = torch.gather(ref[None], 2, perm[..., None].expand(-1, -1, -1, 4))
        scores = []
        for t in range(len(frames)):
            a = max(0, t - window + 1)
            refined = temporal.refine(
                hs[:, a:t + 1],
                text[None, a:t + 1, 0],
                refs[:, a:t + 1],
                times[:, a:t + 1],
                single_frame=True)[:, -1]
            cls, _, _ = model.last_layer_predictions(refined, refs[:, t], text[t:t + 1],
                                                     tmask[t:t + 1])
            scores.append(cls[0].sigmoid())
    stream = _stream(model, [TEXTS[e]], window=window)
    for t, path in enumerate(frames):
        got = stream.step(path)[0]
        track = int(torch.stack(scores[:t + 1]).mean(0).argmax())
        assert got['track'] == track
        assert got['score'] == pytest.approx(float(scores[t][track]), abs=1e-5)


def test_a_skipped_frame_keeps_the_later_frames_in_their_place_in_time(model, frames):
    """``skip()`` for an unusable frame: no output, but the next frame is at its true index,
    in the result and in the times the temporal decoder sees."""
    seen = []
    original = model.temporal.refine

    def refine(hs, sentences, refs, times, **kwargs):
        seen.append(times[0].tolist())
        return original(hs, sentences, refs, times, **kwargs)

    model.temporal.refine = refine
    try:
        stream = _stream(model, [TEXTS[0]], window=4)
        stream.step(frames[0])
        stream.step(frames[1])
        stream.skip()  # frame 2 unusable
        got = stream.step(frames[3])[0]
    finally:
        del model.temporal.refine
    assert got['index'] == 3 and got['frame'] == osp.splitext(osp.basename(frames[3]))[0]
    assert seen[-1] == [0.0, 1.0, 3.0]


def test_expressions_share_the_backbone_and_do_not_affect_each_other(model, frames):
    """Per frame the backbone runs once for all expressions and no text is encoded; each
    expression's results equal those of a stream of it alone."""
    both = _stream(model)
    calls = {'feats': 0, 'text': 0}
    feats, encode_text = model.extract_frame_feats, model.encode_text

    def count_feats(*args, **kwargs):
        calls['feats'] += 1
        return feats(*args, **kwargs)

    def count_text(*args, **kwargs):
        calls['text'] += 1
        return encode_text(*args, **kwargs)

    model.extract_frame_feats, model.encode_text = count_feats, count_text
    try:
        together = [both.step(path) for path in frames[:3]]
    finally:
        del model.extract_frame_feats, model.encode_text
    assert calls == {'feats': 3, 'text': 0}
    for e, text in enumerate(TEXTS):
        alone = _stream(model, [text])
        for t, path in enumerate(frames[:3]):
            got = alone.step(path)[0]
            np.testing.assert_array_equal(got['mask'], together[t][e]['mask'])
            assert got['score'] == together[t][e]['score'] and got['track'] == \
                together[t][e]['track']


# ---------------------------------------------------------------------------- bounded
def test_state_does_not_grow_with_the_video(model, frames):
    """The stream's state after 50 frames is as large as after 500 (tracker memory, W
    frames of queries, one running score per track); with real frames, once W are seen."""
    stream = _stream(model, [TEXTS[0]], window=3)
    state = stream._states[0]
    q, c = 6, 256  # the stream does not care how many queries: few keep the test fast
    gen = torch.Generator().manual_seed(0)
    size = {}
    with torch.no_grad():
        for t in range(500):
            hidden = torch.randn(1, q, c, generator=gen)
            ref = torch.rand(1, q, 4, generator=gen)
            text = torch.randn(1, 5, c, generator=gen)
            stream._advance(state, hidden, ref, text, torch.ones(1, 5, dtype=bool), t)
            stream._choose(state, 0)
            if t + 1 in (50, 500):
                size[t + 1] = (stream.state_nbytes(), len(state.window))
    assert size[50] == size[500] == (size[50][0], 3) and size[50][0] > 0
    for delay in (0, 1):  # with a delay the pending frames' encodings count too
        real = _stream(model, [TEXTS[0]], window=2, delay=delay)
        seen = {}
        for t, path in enumerate(frames):
            real.step(path)
            seen[t + 1] = real.state_nbytes()
        assert seen[3] == seen[6] and seen[1] < seen[2]


# ---------------------------------------------------------------------------- bad input
def test_bad_frames_are_refused_and_leave_the_stream_unchanged(model, frames, tmp_path):
    stream = _stream(model)
    first = stream.step(frames[0])
    with pytest.raises(
            ValueError,
            match=r'frame 00001 \(index 1\): size 80x48 differs from '
            r"the stream's first frame \(64x48\)"):
        stream.step(np.zeros((48, 80, 3), np.uint8), name='00001')
    cut = str(tmp_path / '00001.jpg')
    with open(frames[1], 'rb') as f:
        data = f.read()
    with open(cut, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(OSError, match='corrupt JPEG.*00001.jpg'):
        stream.step(cut)
    with pytest.raises(ValueError, match='no image'):
        stream.step(None)
    with pytest.raises(ValueError, match='uint8'):
        stream.step(np.zeros((48, 64, 3), np.float32))
    with pytest.raises(FileNotFoundError, match='nowhere.jpg'):
        stream.step(str(tmp_path / 'nowhere.jpg'))
    assert stream.frames_seen == 1
    # the refused frames left no trace: the next good frames give what they give without them
    after = [stream.step(path) for path in frames[1:3]]
    clean = _stream(model)
    expected = [clean.step(path) for path in frames[:3]]
    for got, ref in zip([first] + after, expected):
        for g, r in zip(got, ref):
            np.testing.assert_array_equal(g['mask'], r['mask'])
            assert g['score'] == r['score']


def test_bad_settings_are_refused(model):
    from mmrvos.apis import RVOSStream
    with pytest.raises(ValueError, match='empty expression'):
        _stream(model, ['the dog', '  '])
    with pytest.raises(ValueError, match='no expression'):
        _stream(model, [])
    for window in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match='window must be a positive integer'):
            _stream(model, window=window)
    for delay in (-1, 0.5, True):
        with pytest.raises(ValueError, match='delay must be an integer >= 0'):
            _stream(model, delay=delay)
    with pytest.raises(ValueError, match=r'window \(3\) must be larger than delay \(3\)'):
        _stream(model, window=3, delay=3)
    with pytest.raises(ValueError, match='ReferDINO-family'):
        RVOSStream(torch.nn.Linear(2, 2), ['a'])
    model.test_cfg['stream_window'] = 4
    try:
        assert _stream(model).window == 4 and _stream(model, window=2).window == 2
    finally:
        del model.test_cfg['stream_window']
    assert _stream(model).window == 6


def test_stream_source_reads_lazily_and_names_where_it_stopped(tmp_path, monkeypatch):
    from mmrvos.apis.stream_source import StreamSource, StreamStopped
    names = ['2.jpg', '10.jpg', '1.jpg']
    write_frames(str(tmp_path / 'f'), names)
    with pytest.warns(UserWarning, match='numeric order'):
        source = StreamSource(str(tmp_path / 'f'))
    assert [n for n, _ in source] == ['1', '2', '10'] and source.length == 3
    with pytest.raises(FileNotFoundError, match='no such video file or frame folder'):
        StreamSource(str(tmp_path / 'nowhere'))
    # a video file that stops decoding before the frame count its header announces
    damaged = _damaged_video(str(tmp_path / 'v.avi'))
    source = StreamSource(damaged)
    got = []
    with pytest.raises(StreamStopped, match=r'cannot decode frame 2 \(the file announces 6'):
        for name, frame in source:
            got.append(name)
    assert got == ['00000', '00001']

    # a camera that delivers 3 frames, then nothing
    class Camera:

        def __init__(self, index):
            self.left = 3

        def isOpened(self):
            return True

        def get(self, prop):
            return 0.0

        def read(self):
            self.left -= 1
            return (True, np.zeros((8, 8, 3), np.uint8)) if self.left >= 0 else (False, None)

        def release(self):
            pass

    monkeypatch.setattr(cv2, 'VideoCapture', Camera)
    source = StreamSource(0, stall_timeout=0.1)
    assert source.kind == 'camera' and source.length is None
    with pytest.raises(StreamStopped, match='camera 0 stopped delivering frames after 3'):
        list(source)


def _damaged_video(path: str, num: int = 6) -> str:
    """An MJPG AVI of ``num`` frames whose third frame's data is zeroed: OpenCV decodes two
    frames, then stops, while the header announces ``num``."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 5, (64, 48))
    for i in range(num):
        img = np.full((48, 64, 3), 30 * i, np.uint8)
        img[10:20, 5 + 5 * i:15 + 5 * i] = (0, 0, 255)
        writer.write(img)
    writer.release()
    with open(path, 'rb') as f:
        data = bytearray(f.read())
    chunks = [i for i in range(len(data)) if data[i:i + 4] == b'00dc']
    data[chunks[3] + 8:chunks[3] + 2000] = bytes(1992)
    with open(path, 'wb') as f:
        f.write(bytes(data))
    cap = cv2.VideoCapture(path)
    decoded = 0
    while cap.read()[0]:
        decoded += 1
    assert decoded == 2 and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == num
    return path


# ---------------------------------------------------------------------------- the demo
def _masks(folder, names):
    return [np.array(Image.open(osp.join(folder, f'{n}.png'))) for n in names]


def test_demo_stream_on_judo_frames_writes_the_stream_masks(tmp_path, checkpoint):
    """``tools/demo.py FRAMES CONFIG --stream --weights CKPT --texts A B --out-dir DIR`` on the
    first judo frames: one PNG per frame and expression (what RVOSStream gives in-process with
    the same checkpoint), a JSON line per frame, a summary."""
    if not osp.isdir(JUDO_FRAMES):
        pytest.skip(f'real fixture not found at {JUDO}')
    frames = tmp_path / 'judo3'
    frames.mkdir()
    names = sorted(os.listdir(JUDO_FRAMES))[:3]
    for name in names:
        os.symlink(osp.join(JUDO_FRAMES, name), frames / name)
    out = tmp_path / 'out'
    texts = ['a man in a white judo uniform', 'the referee']
    proc = _run([
        'tools/demo.py',
        str(frames), TOY_CONFIG, '--stream', '--window', '2', '--delay', '1', '--weights',
        checkpoint, '--texts', *texts, '--out-dir',
        str(out), '--scale', '160', '96', '--video-format', 'mp4'
    ])
    assert_ok(proc)
    assert 'frame 00002: 3/3 frames' in proc.stdout
    assert sorted(
        os.listdir(out)) == ['exp0', 'exp1', 'overlay.mp4', 'results.json', 'results.jsonl']
    from mmrvos.apis import RVOSStream, init_rvos_model
    model = init_rvos_model(osp.join(REPO_ROOT, TOY_CONFIG), checkpoint)
    stream = RVOSStream(model, texts, window=2, delay=1, scale=(160, 96))
    expected = [stream.step(osp.join(JUDO_FRAMES, n)) for n in names][1:] + stream.flush()
    stems = [osp.splitext(n)[0] for n in names]
    lines = [json.loads(line) for line in open(out / 'results.jsonl')]
    assert [line['frame'] for line in lines] == stems
    for e in range(2):
        for t, png in enumerate(_masks(out / f'exp{e}', stems)):
            assert png.shape == (480, 854) and set(np.unique(png)) <= {0, 255}
            np.testing.assert_array_equal(png > 0, expected[t][e]['mask'])
            record = lines[t]['expressions'][e]
            assert record['area'] == int(expected[t][e]['mask'].sum())
            assert record['score'] == pytest.approx(expected[t][e]['score'], abs=1e-6)
    summary = json.load(open(out / 'results.json'))
    assert summary['frames'] == 3 and summary['stopped'] is None
    assert summary['window'] == 2 and summary['delay'] == 1
    cap = cv2.VideoCapture(str(out / 'overlay.mp4'))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == 3


def test_demo_stream_stops_on_a_corrupt_frame_keeping_the_masks_written(
        tmp_path, frames, checkpoint):
    """A truncated frame mid-video: ``error:`` naming it, status 2, the masks of the frames
    before it written (as they came, and the ones still pending with a delay);
    ``--skip-bad-frames`` warns and goes on. With ``--overwrite`` over an earlier output, a
    failed run leaves that output untouched."""
    folder = tmp_path / 'video'
    shutil.copytree(osp.dirname(frames[0]), folder)
    data = (folder / '00003.jpg').read_bytes()
    (folder / '00003.jpg').write_bytes(data[:len(data) // 2])
    base = [
        'tools/demo.py',
        str(folder), TOY_CONFIG, '--stream', '--weights', checkpoint, '--texts', TEXTS[0],
        '--scale', *map(str, SCALE)
    ]
    out = tmp_path / 'out'
    # --delay 2: frames 1 and 2 are still pending when frame 3 fails; they are written too
    proc = _run(base + ['--out-dir', str(out), '--delay', '2', '--window', '3'])
    assert_clean_error(proc, 'corrupt JPEG', '00003.jpg')
    assert 'stopped after 3 frames' in proc.stderr
    assert sorted(os.listdir(out / 'exp0')) == ['00000.png', '00001.png', '00002.png']
    assert len(open(out / 'results.jsonl').readlines()) == 3
    summary = json.load(open(out / 'results.json'))
    assert summary['frames'] == 3 and 'corrupt JPEG' in summary['stopped']
    skipped = tmp_path / 'skipped'
    proc = _run(base +
                ['--out-dir',
                 str(skipped), '--skip-bad-frames', '--delay', '2', '--window', '3'])
    assert_ok(proc)
    assert 'warning: skipped frame 00003' in proc.stderr
    assert sorted(os.listdir(skipped / 'exp0')) == [f'0000{i}.png' for i in (0, 1, 2, 4, 5)]
    # frame 0 knew frames 1 and 2 in both runs: the same mask
    np.testing.assert_array_equal(
        _masks(out / 'exp0', ['00000'])[0],
        _masks(skipped / 'exp0', ['00000'])[0])
    # an earlier output replaced with --overwrite: untouched by a failed run
    before = snapshot(str(skipped))
    proc = _run(base + ['--out-dir', str(skipped), '--overwrite'])
    assert_clean_error(proc, '00003.jpg')
    assert snapshot(str(skipped)) == before
    assert f'{skipped} is untouched' in proc.stderr


def test_demo_stream_stops_on_a_damaged_video_and_a_stopped_camera(tmp_path, checkpoint):
    video = _damaged_video(str(tmp_path / 'clip.avi'))
    out = tmp_path / 'out'
    proc = _run([
        'tools/demo.py', video, TOY_CONFIG, '--stream', '--weights', checkpoint, '--texts',
        'the red square', '--out-dir',
        str(out), '--scale', *map(str, SCALE)
    ])
    assert_clean_error(proc, 'clip.avi: cannot decode frame 2', 'announces 6 frames')
    assert sorted(os.listdir(out / 'exp0')) == ['00000.png', '00001.png']
    # a camera (index 0) that delivers 4 frames and then none: OpenCV's capture replaced in
    # the demo's own process, which otherwise runs as a user starts it
    camera = ('import runpy, sys, cv2, numpy as np\n'
              'class Camera:\n'
              '    def __init__(self, index): self.left = 4\n'
              '    def isOpened(self): return True\n'
              '    def get(self, prop): return 0.0\n'
              '    def read(self):\n'
              '        self.left -= 1\n'
              '        if self.left < 0: return False, None\n'
              '        return True, np.full((48, 64, 3), 60 * self.left, np.uint8)\n'
              '    def release(self): pass\n'
              'cv2.VideoCapture = Camera\n'
              'sys.argv = sys.argv[1:]\n'
              "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    cam_out = tmp_path / 'camera'
    proc = _run([
        'tools/demo.py', '0', TOY_CONFIG, '--stream', '--weights', checkpoint, '--texts',
        'the red square', '--out-dir',
        str(cam_out), '--scale', *map(str, SCALE), '--stall-timeout', '0.2'
    ],
                python_args=['-c', camera])
    assert_clean_error(proc, 'camera 0 stopped delivering frames after 4 frames')
    assert len(os.listdir(cam_out / 'exp0')) == 4
    # --max-frames ends a live source normally
    proc = _run([
        'tools/demo.py', '0', TOY_CONFIG, '--stream', '--weights', checkpoint, '--texts',
        'the red square', '--out-dir',
        str(tmp_path / 'two'), '--scale', *map(str, SCALE), '--max-frames', '2'
    ],
                python_args=['-c', camera])
    assert_ok(proc)
    assert len(os.listdir(tmp_path / 'two' / 'exp0')) == 2


def test_demo_stream_refuses_bad_options(tmp_path, frames):
    base = [
        'tools/demo.py',
        osp.dirname(frames[0]), TOY_CONFIG, '--texts', 'a', '--out-dir',
        str(tmp_path / 'out')
    ]
    assert_usage_error(_run(base + ['--window', '3']), '--window only apply with --stream')
    assert_usage_error(_run(base + ['--stream', '--video-format', 'gif']), 'use --video-format mp4')
    proc = _run([
        'tools/demo.py', '7', TOY_CONFIG, '--stream', '--texts', 'a', '--out-dir',
        str(tmp_path / 'cam')
    ])
    assert_clean_error(proc, 'camera 7: OpenCV cannot open it')
    assert not osp.exists(tmp_path / 'cam')

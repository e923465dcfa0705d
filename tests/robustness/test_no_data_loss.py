"""Nothing a user owns is deleted or replaced unless asked, and then only after the new result
is complete: every tool that writes a folder or file, run as a user runs it."""
import json
import os
import os.path as osp
import struct
import zlib

import pytest
from rvos_shell import (TOY_CONFIG, assert_clean_error, assert_ok, leftovers, run_tool, snapshot,
                        write_davis_tree, write_frames)


def _demo(frames, out, texts, *extra):
    args = [
        'tools/demo.py', frames, '--config', TOY_CONFIG, '--out-dir', out, '--scale', '64', '48',
        *extra
    ]
    for t in texts:
        args += ['--text', t]
    return run_tool(args)


def _corrupt_png_body(path):
    """Keep the PNG signature, IHDR and IEND (so the header and tail look complete) but break
    the IDAT data: only decoding the pixels finds it."""
    data = open(path, 'rb').read()
    pos = data.index(b'IDAT')
    length = struct.unpack('>I', data[pos - 4:pos])[0]
    body = bytes(b ^ 0x5A for b in data[pos + 4:pos + 4 + length])
    crc = struct.pack('>I', zlib.crc32(b'IDAT' + body) & 0xFFFFFFFF)
    with open(path, 'wb') as f:
        f.write(data[:pos + 4] + body + crc + data[pos + 8 + length:])


def test_demo_replaces_its_output_only_after_success(tmp_path):
    frames = str(tmp_path / 'frames')
    write_frames(frames, [f'{i:05d}.png' for i in range(3)])
    out = str(tmp_path / 'out')
    assert_ok(_demo(frames, out, ['the red square', 'the background']))
    assert sorted(os.listdir(out)) == ['exp0', 'exp1', 'overlay.gif', 'results.json']
    # not asked: refused, untouched
    before = snapshot(out)
    assert_clean_error(_demo(frames, out, ['the red square']), 'exists', '--overwrite')
    assert snapshot(out) == before
    # asked: replaced as a whole (no stale exp1 of the earlier two-expression run)
    assert_ok(_demo(frames, out, ['the square'], '--overwrite'))
    assert sorted(os.listdir(out)) == ['exp0', 'overlay.gif', 'results.json']
    assert json.load(open(osp.join(out, 'results.json')))['expressions'][0]['text'] == \
        'the square'
    assert leftovers(out) == []
    # asked, but the run fails: an unreadable video file (found before any writing) ...
    before = snapshot(out)
    broken = tmp_path / 'broken.mp4'
    broken.write_bytes(b'not a video')
    assert_clean_error(_demo(str(broken), out, ['a cat'], '--overwrite'), 'broken.mp4')
    assert snapshot(out) == before and leftovers(out) == []
    # ... or a frame whose pixels cannot be decoded (found while the model reads it)
    _corrupt_png_body(osp.join(frames, '00002.png'))
    assert_clean_error(_demo(frames, out, ['a cat'], '--overwrite'), '00002.png')
    assert snapshot(out) == before and leftovers(out) == []


def test_demo_never_replaces_a_folder_it_did_not_write(tmp_path):
    frames = str(tmp_path / 'frames')
    write_frames(frames, ['00000.jpg'])
    mine = tmp_path / 'mine'
    mine.mkdir()
    (mine / 'thesis.tex').write_text('years of work')
    (mine / 'results.json').write_text('{}')
    before = snapshot(str(mine))
    assert_clean_error(
        _demo(frames, str(mine), ['a'], '--overwrite'), 'thesis.tex', 'does not write')
    assert snapshot(str(mine)) == before
    # an output path that is a file
    afile = tmp_path / 'afile'
    afile.write_text('x')
    assert_clean_error(_demo(frames, str(afile), ['a']), 'not a folder')
    assert afile.read_text() == 'x'


def _train(*args):
    return run_tool(['tools/train.py', TOY_CONFIG, *args])


def test_train_resume_refuses_another_runs_work_dir(tmp_path):
    """mmengine's CheckpointHook writes iter_N.pth and last_checkpoint into the work dir and,
    with max_keep_ckpts, deletes older iter_N.pth by name: resuming a checkpoint from
    elsewhere into a work dir holding another run's checkpoints would replace them."""
    other = tmp_path / 'run_b'
    other.mkdir()
    for name in ('iter_500.pth', 'iter_1000.pth'):
        (other / name).write_bytes(b'run b ' + name.encode())
    (other / 'last_checkpoint').write_text(str(other / 'iter_1000.pth'))
    ckpt = tmp_path / 'run_a' / 'iter_500.pth'
    ckpt.parent.mkdir()
    ckpt.write_bytes(b'run a')
    before = snapshot(str(other))
    proc = _train('--work-dir', str(other), '--resume', str(ckpt))
    assert_clean_error(proc, 'another run', 'iter_1000.pth', '--overwrite')
    assert snapshot(str(other)) == before
    # a fresh run there is refused too (as before), and so is a work dir with only
    # last_checkpoint
    assert_clean_error(_train('--work-dir', str(other)), 'already holds checkpoints')
    only_last = tmp_path / 'run_c'
    only_last.mkdir()
    (only_last / 'last_checkpoint').write_text('/somewhere/iter_3.pth')
    assert_clean_error(_train('--work-dir', str(only_last)), 'last_checkpoint')
    # a missing checkpoint to resume: a clear error
    assert_clean_error(
        _train('--work-dir', str(tmp_path / 'new'), '--resume', str(tmp_path / 'missing.pth')),
        'missing.pth')


def _toy(out, *extra, num_train='3'):
    return run_tool([
        'tools/make_toy_dataset.py', out, '--num-train', num_train, '--num-valid', '1',
        '--num-frames', '6', '--width', '96', '--height', '64', *extra
    ])


def test_make_toy_dataset_refuses_then_replaces_without_stale_videos(tmp_path):
    out = str(tmp_path / 'toy')
    assert_ok(_toy(out))
    videos = sorted(os.listdir(osp.join(out, 'train', 'JPEGImages')))
    assert len(videos) == 3
    before = snapshot(out)
    assert_clean_error(_toy(out, num_train='1'), 'not empty', '--overwrite')
    assert snapshot(out) == before
    assert_ok(_toy(out, '--overwrite', num_train='1'))
    meta = json.load(open(osp.join(out, 'meta_expressions', 'train', 'meta_expressions.json')))
    on_disk = sorted(os.listdir(osp.join(out, 'train', 'JPEGImages')))
    assert on_disk == sorted(meta['videos']) == videos[:1]  # no stale train_0001, train_0002
    assert leftovers(out) == []
    # a folder that is not a toy benchmark is never replaced
    mine = tmp_path / 'mine'
    mine.mkdir()
    (mine / 'notes.txt').write_text('mine')
    assert_clean_error(_toy(str(mine), '--overwrite'), 'notes.txt')
    assert (mine / 'notes.txt').read_text() == 'mine'


def test_davis_to_ytvos_refuses_different_meta_files(tmp_path):
    root, out = str(tmp_path / 'davis'), str(tmp_path / 'out')
    write_davis_tree(root)
    meta = osp.join(out, 'meta_expressions', 'valid', 'meta_expressions.json')
    os.makedirs(osp.dirname(meta))
    with open(meta, 'w') as f:
        f.write('{"videos": {"another": {}}}')
    args = ['tools/dataset_converters/davis_to_ytvos.py', '--davis-root', root, '--out', out]
    assert_clean_error(run_tool(args), 'meta_expressions.json', '--overwrite')
    assert open(meta).read() == '{"videos": {"another": {}}}'
    assert not osp.exists(osp.join(out, 'train'))  # nothing copied before the refusal
    assert_ok(run_tool(args + ['--overwrite']))
    assert list(json.load(open(meta))['videos']) == ['car']


def test_test_tool_refuses_existing_outputs(tmp_path):
    ckpt = tmp_path / 'c.pth'
    ckpt.write_bytes(b'not loaded before the checks')
    out = tmp_path / 'preds.pkl'
    out.write_bytes(b'earlier predictions')
    proc = run_tool(['tools/test.py', TOY_CONFIG, str(ckpt), '--out', str(out)])
    assert_clean_error(proc, 'preds.pkl', '--overwrite')
    assert out.read_bytes() == b'earlier predictions'
    show = tmp_path / 'show'
    show.mkdir()
    (show / 'a.png').write_bytes(b'earlier overlay')
    proc = run_tool([
        'tools/test.py', TOY_CONFIG,
        str(ckpt), '--show-dir',
        str(show), '--work-dir',
        str(tmp_path / 'w')
    ])
    assert_clean_error(proc, 'show', '--overwrite')
    assert (show / 'a.png').read_bytes() == b'earlier overlay'


def test_eval_masks_refuses_an_existing_out(tmp_path):
    out = tmp_path / 'jf.json'
    out.write_text('earlier scores')
    proc = run_tool(['tools/eval_masks.py', str(tmp_path), str(tmp_path), '--out', str(out)])
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    assert 'exists' in proc.stderr and out.read_text() == 'earlier scores'


def test_model_converter_refuses_an_existing_dst(tmp_path):
    dst = tmp_path / 'dst.pth'
    dst.write_bytes(b'earlier weights')
    proc = run_tool(['tools/model_converters/merge_lora.py', str(tmp_path / 'src.pth'), str(dst)])
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    assert 'exists' in proc.stderr and dst.read_bytes() == b'earlier weights'


@pytest.mark.parametrize('fail', [False, True])
def test_staged_output_dir(tmp_path, fail):
    """The helper every tool uses: the old folder survives a failure, is replaced on success."""
    from mmrvos.fileio import StagedOutputDir
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'results.json').write_text('old')
    with pytest.raises(RuntimeError) if fail else _null():
        with StagedOutputDir(str(out), overwrite=True, expected=['results.json']) as tmp:
            with open(osp.join(tmp, 'results.json'), 'w') as f:
                f.write('new')
            if fail:
                raise RuntimeError('boom')
    assert (out / 'results.json').read_text() == ('old' if fail else 'new')
    assert sorted(os.listdir(tmp_path)) == ['out']


class _null:

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

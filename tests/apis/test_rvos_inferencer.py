"""RVOSInferencer against tools/test.py on the same clip and checkpoint, on a video file against
its frames, several expressions against one at a time; tools/test.py --show-dir and
tools/demo.py run as a user runs them (``python tools/x.py`` from the repository root)."""
import glob
import json
import os
import os.path as osp
import pickle

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image
from rvos_shell import (JUDO_FRAMES, TOY_CONFIG, assert_clean_error, assert_ok, run_tool,
                        write_frames)

from rvos_test_utils import JUDO, REPO_ROOT


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A complete checkpoint of the tiny toy model (random weights, fixed seed)."""
    import torch

    from mmrvos.apis import init_rvos_model
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth')
    torch.save({'state_dict': init_rvos_model(osp.join(REPO_ROOT, TOY_CONFIG)).state_dict()}, path)
    return path


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    """One 6-frame validation video of the toy benchmark (tools/make_toy_dataset.py) and a
    config reading it with small loaders, as a user writes one."""
    root = str(tmp_path_factory.mktemp('toy') / 'toy_rvos')
    assert_ok(
        run_tool([
            'tools/make_toy_dataset.py', root, '--seed', '3', '--num-train', '1', '--num-valid',
            '1', '--num-frames', '6', '--width', '96', '--height', '64'
        ]))
    config = tmp_path_factory.mktemp('cfg') / 'toy_small.py'
    config.write_text(f"""
_base_ = [{osp.join(REPO_ROOT, TOY_CONFIG)!r}]
data_root = {root + '/'!r}
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(data_root=data_root)
test_evaluator = val_evaluator
""")
    meta = json.load(open(osp.join(root, 'meta_expressions', 'valid',
                                   'meta_expressions.json')))['videos']
    (video, info), = meta.items()
    exps = sorted(info['expressions'].items())
    return dict(
        root=root,
        config=str(config),
        video=video,
        frames=info['frames'],
        frame_dir=osp.join(root, 'valid', 'JPEGImages', video),
        exp_ids=[i for i, _ in exps],
        texts=[e['exp'] for _, e in exps])


@pytest.fixture(scope='module')
def test_tool_run(toy, checkpoint, tmp_path_factory):
    """``tools/test.py CONFIG CKPT --out preds.pkl --show-dir vis`` in a fresh process."""
    work = tmp_path_factory.mktemp('test_tool')
    out = str(work / 'preds.pkl')
    proc = run_tool([
        'tools/test.py', toy['config'], checkpoint, '--work-dir',
        str(work / 'w'), '--out', out, '--show-dir', 'vis'
    ])
    assert_ok(proc)
    # our own tool's output, written in this test's folder (not a file from outside)
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    show_dirs = glob.glob(str(work / 'w' / '*' / 'vis'))
    return dict(preds=preds, show_dirs=show_dirs)


@pytest.fixture(scope='module')
def inferencer(toy, checkpoint):
    from mmrvos.apis import RVOSInferencer
    return RVOSInferencer(toy['config'], weights=checkpoint, device='cpu', show_progress=False)


def test_inferencer_masks_equal_test_tool_predictions(toy, test_tool_run, inferencer):
    """Same config, checkpoint and clip: the inferencer (config's test pipeline, lazy reading,
    all expressions at once) gives tools/test.py's masks, boxes and scores, frame by frame."""
    result = inferencer(toy['frame_dir'], toy['texts'])
    clips = {c['exp_id']: c for c in test_tool_run['preds'] if c['video_id'] == toy['video']}
    assert sorted(clips) == sorted(toy['exp_ids'])
    drawn_any = False
    for exp_id, text, pred in zip(toy['exp_ids'], toy['texts'], result['predictions']):
        clip = clips[exp_id]
        assert clip['text'] == text == pred['text']
        frames = clip['video_data_samples']
        assert [f.frame_id for f in frames] == pred['frame_names'] == toy['frames']
        ref_masks = np.stack([f.pred_instances.masks.numpy().any(0) for f in frames])
        assert pred['masks'].dtype == bool and pred['masks'].shape == (6, 64, 96)
        np.testing.assert_array_equal(pred['masks'], ref_masks)
        np.testing.assert_array_equal(
            pred['boxes'], np.stack([f.pred_instances.bboxes.numpy()[0] for f in frames]))
        np.testing.assert_array_equal(
            pred['scores'], np.stack([f.pred_instances.scores.numpy()[0] for f in frames]))
        drawn_any |= bool(ref_masks.any())
    assert drawn_any  # the comparison is not between empty masks only


def test_show_dir_writes_one_overlay_per_expression_and_frame(toy, test_tool_run):
    """``--show-dir`` (mmdet's image hook used to fail on video samples): one drawing per
    expression and frame, ground truth and prediction side by side at the frame's size."""
    show_dirs = test_tool_run['show_dirs']
    assert len(show_dirs) == 1
    video_dir = osp.join(show_dirs[0], toy['video'])
    assert sorted(os.listdir(video_dir)) == sorted(toy['exp_ids'])
    for exp_id in toy['exp_ids']:
        names = sorted(os.listdir(osp.join(video_dir, exp_id)))
        assert names == [f'{f}.jpg' for f in toy['frames']]
        drawn = cv2.imread(osp.join(video_dir, exp_id, names[0]))
        assert drawn.shape == (64, 2 * 96, 3)


def test_video_file_and_frame_folder_give_the_same_masks(tmp_path, inferencer, toy):
    """A video file (read lazily with mmcv.VideoReader) and a folder of its decoded frames
    give the same result; each expression's result does not depend on the others run with
    it; ``out_dir`` holds exactly the returned masks and boxes."""
    frames = [cv2.imread(osp.join(toy['frame_dir'], f'{n}.jpg')) for n in toy['frames']]
    path = str(tmp_path / 'clip.avi')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 5, (96, 64))
    for frame in frames:
        writer.write(frame)
    writer.release()
    folder = tmp_path / 'decoded'
    folder.mkdir()
    cap = cv2.VideoCapture(path)
    count = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        cv2.imwrite(str(folder / f'{count:05d}.png'), frame)  # lossless copy of the decoding
        count += 1
    assert count == 6
    texts = toy['texts'][:2]
    from_video = inferencer(path, texts, out_dir=str(tmp_path / 'out'), video_format='gif')
    from_folder = inferencer(str(folder), texts)
    alone = inferencer(str(folder), [texts[1]])['predictions'][0]
    for a, b in zip(from_video['predictions'], from_folder['predictions']):
        assert a['frame_names'] == b['frame_names'] == [f'{i:05d}' for i in range(6)]
        np.testing.assert_array_equal(a['masks'], b['masks'])
        np.testing.assert_array_equal(a['boxes'], b['boxes'])
        assert a['boxes'].shape == (6, 4) and a['scores'].shape == (6, )
    np.testing.assert_array_equal(alone['masks'], from_folder['predictions'][1]['masks'])
    np.testing.assert_array_equal(alone['scores'], from_folder['predictions'][1]['scores'])
    # what was written is what was returned
    out = tmp_path / 'out'
    assert sorted(os.listdir(out)) == ['exp0', 'exp1', 'overlay.gif', 'results.json']
    saved = json.load(open(out / 'results.json'))
    for i, pred in enumerate(from_video['predictions']):
        for t, name in enumerate(pred['frame_names']):
            png = np.array(Image.open(out / f'exp{i}' / f'{name}.png'))
            np.testing.assert_array_equal(png, pred['masks'][t].astype(np.uint8) * 255)
            record = saved['expressions'][i]['frames'][t]
            assert record['frame'] == name and record['area'] == int(pred['masks'][t].sum())
            np.testing.assert_allclose(record['box'], pred['boxes'][t], atol=0.006)
    assert Image.open(out / 'overlay.gif').n_frames == 6
    assert from_video['visualization'] == str(out / 'overlay.gif')


def test_inferencer_refuses_bad_calls(tmp_path, inferencer, toy):
    from mmrvos.apis import RVOSInferencer
    with pytest.raises(ValueError, match='no expression'):
        inferencer(toy['frame_dir'], [])
    with pytest.raises(ValueError, match='empty expression'):
        inferencer(toy['frame_dir'], ['a', '  '])
    with pytest.raises(ValueError, match='video_format'):
        inferencer(toy['frame_dir'], ['a'], video_format='avi')
    with pytest.raises(FileNotFoundError, match='nowhere'):
        inferencer(str(tmp_path / 'nowhere'), ['a'])
    mine = tmp_path / 'mine'
    mine.mkdir()
    (mine / 'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='exists'):
        inferencer(toy['frame_dir'], ['a'], out_dir=str(mine))
    assert os.listdir(mine) == ['notes.txt']
    with pytest.raises(FileNotFoundError, match='w.pth'):
        RVOSInferencer(toy['config'], weights=str(tmp_path / 'w.pth'))
    with pytest.raises(ValueError, match='no such config file'):
        RVOSInferencer('no_such_model_name')


def test_model_names_of_the_metafile_resolve_to_their_configs():
    """A metafile model name (any case) gives its config, as mmdet's DetInferencer does."""
    from mmrvos.apis import resolve_model
    with open(osp.join(REPO_ROOT, 'configs', 'referdino', 'metafile.yml')) as f:
        models = yaml.safe_load(f)['Models']
    for entry in models:
        cfg, weights = resolve_model(entry['Name'].upper())
        assert osp.samefile(cfg.filename, osp.join(REPO_ROOT, entry['Config']))
        assert weights == entry.get('Weights')
    with pytest.raises(ValueError, match='did you mean'):
        resolve_model(models[0]['Name'][:-1] + 'x')


def test_demo_on_the_first_judo_frames(tmp_path, checkpoint):
    """``tools/demo.py FRAMES CONFIG --weights CKPT --texts A B --out-dir DIR``, the README's
    command, on the first frames of the real judo video."""
    if not osp.isdir(JUDO_FRAMES):
        pytest.skip(f'real fixture not found at {JUDO}')
    frames = tmp_path / 'judo3'
    frames.mkdir()
    names = sorted(os.listdir(JUDO_FRAMES))[:3]
    for name in names:
        os.symlink(osp.join(JUDO_FRAMES, name), frames / name)
    out = tmp_path / 'demo'
    proc = run_tool([
        'tools/demo.py',
        str(frames), TOY_CONFIG, '--weights', checkpoint, '--texts',
        'a man in a white judo uniform', 'the referee', '--out-dir',
        str(out), '--scale', '160', '96', '--video-format', 'mp4'
    ])
    assert_ok(proc)
    assert sorted(os.listdir(out)) == ['exp0', 'exp1', 'overlay.mp4', 'results.json']
    for i in range(2):
        pngs = sorted(os.listdir(out / f'exp{i}'))
        assert pngs == [n.replace('.jpg', '.png') for n in names]
        mask = np.array(Image.open(out / f'exp{i}' / pngs[0]))
        assert mask.shape == (480, 854) and set(np.unique(mask)) <= {0, 255}
    cap = cv2.VideoCapture(str(out / 'overlay.mp4'))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == 3
    summary = json.load(open(out / 'results.json'))
    texts = [e['text'] for e in summary['expressions']]
    assert texts == ['a man in a white judo uniform', 'the referee']
    # the same output folder again: refused, untouched
    proc = run_tool(
        ['tools/demo.py',
         str(frames), TOY_CONFIG, '--texts', 'a', '--out-dir',
         str(out)])
    assert_clean_error(proc, 'exists', '--overwrite')
    assert sorted(os.listdir(out / 'exp0')) == [n.replace('.jpg', '.png') for n in names]


def test_demo_refuses_two_configs_and_no_expression(tmp_path):
    frames = str(tmp_path / 'frames')
    write_frames(frames, ['00000.jpg'])
    out = str(tmp_path / 'out')
    proc = run_tool([
        'tools/demo.py', frames, TOY_CONFIG, '--config', 'other.py', '--texts', 'a', '--out-dir',
        out
    ])
    assert proc.returncode == 2 and 'two configs' in proc.stderr
    proc = run_tool(['tools/demo.py', frames, TOY_CONFIG, '--out-dir', out])
    assert proc.returncode == 2 and 'at least one expression' in proc.stderr
    assert not osp.exists(out)

"""Every entry point run as a user runs it: ``python tools/x.py`` in a fresh process from the
repository root, without the test suite's registry scope (a fresh process does not get it).
Each one answers ``--help`` and does one minimal real run on tiny data."""
import glob
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image
from rvos_shell import (JUDO_FRAMES, TOY_CONFIG, assert_clean_error, assert_ok, run_tool,
                        write_davis_tree, write_frames)

from rvos_test_utils import JUDO, REPO_ROOT

TINY_MODEL = osp.join('configs', '_base_', 'models', 'referdino_tiny.py')
ENTRY_POINTS = sorted([
    'tools/demo.py', 'tools/train.py', 'tools/test.py', 'tools/make_toy_dataset.py',
    'tools/eval_masks.py'
] + [
    osp.relpath(p, REPO_ROOT)
    for pattern in ('tools/misc/*.py', 'tools/analysis_tools/*.py', 'tools/model_converters/*.py',
                    'tools/dataset_converters/*.py')
    for p in glob.glob(osp.join(REPO_ROOT, pattern)) if not osp.basename(p).startswith('_')
])


def _judo():
    if not osp.isdir(JUDO_FRAMES):
        pytest.skip(f'real fixture not found at {JUDO}')
    return JUDO_FRAMES


@pytest.mark.parametrize('tool', ENTRY_POINTS)
def test_help(tool):
    proc = run_tool([tool, '--help'], timeout=300)
    assert_ok(proc)
    assert proc.stdout.startswith('usage:') and 'Traceback' not in proc.stderr


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A complete checkpoint of the tiny toy model, saved as a user would."""
    path = tmp_path_factory.mktemp('ckpt') / 'tiny.pth'
    code = ('import sys, torch\nfrom mmrvos.apis import init_rvos_model\n'
            'model = init_rvos_model(sys.argv[1])\n'
            "torch.save({'state_dict': model.state_dict()}, sys.argv[2])\n")
    assert_ok(run_tool(['-c', code, TOY_CONFIG, path]))
    return str(path)


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    """A tiny toy benchmark made by tools/make_toy_dataset.py (its real run)."""
    root = str(tmp_path_factory.mktemp('toy') / 'toy_rvos')
    proc = run_tool([
        'tools/make_toy_dataset.py', root, '--seed', '1', '--num-train', '2', '--num-valid', '1',
        '--num-frames', '6', '--width', '96', '--height', '64'
    ])
    assert_ok(proc)
    meta = json.load(open(osp.join(root, 'meta_expressions', 'valid', 'meta_expressions.json')))
    assert len(meta['videos']) == 1
    assert len(os.listdir(osp.join(root, 'train', 'JPEGImages'))) == 2
    return root


@pytest.fixture(scope='module')
def toy_config(toy_root, tmp_path_factory):
    """The tiny toy config reading ``toy_root`` with small loaders (a user's own config)."""
    path = tmp_path_factory.mktemp('cfg') / 'toy_small.py'
    root = toy_root + '/'
    path.write_text(f"""
_base_ = [{osp.join(REPO_ROOT, TOY_CONFIG)!r}]
data_root = {root!r}
train_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(data_root=data_root)
test_evaluator = val_evaluator
default_hooks = dict(logger=dict(interval=1))
""")
    return str(path)


def test_readme_api_in_a_fresh_process(tmp_path, checkpoint):
    """README: ``init_rvos_model`` + ``inference_rvos`` in a fresh ``python -c`` (no scope set
    up by anyone else) used to stop at 'TrackDataPreprocessor is not in the registry'."""
    frames = str(tmp_path / 'frames')
    write_frames(frames, [f'{i:05d}.jpg' for i in range(3)])
    code = ('import sys\nfrom mmrvos.apis import init_rvos_model, inference_rvos\n'
            "model = init_rvos_model(sys.argv[1], sys.argv[2], device='cpu')\n"
            "res = inference_rvos(model, sys.argv[3], ['the red square'], scale=(64, 48))\n"
            "print('MASKS', res[0]['masks'].shape, res[0]['frame_names'])\n")
    proc = run_tool(['-c', code, TOY_CONFIG, checkpoint, frames])
    assert_ok(proc)
    assert "MASKS (3, 48, 64) ['00000', '00001', '00002']" in proc.stdout


@pytest.mark.parametrize('with_checkpoint', [True, False])
def test_demo_on_judo(tmp_path, checkpoint, with_checkpoint):
    frames = _judo()
    out = str(tmp_path / 'demo')
    args = [
        'tools/demo.py', frames, '--text', 'the man in white', '--config', TOY_CONFIG, '--out-dir',
        out, '--scale', '160', '96'
    ]
    if with_checkpoint:
        args += ['--checkpoint', checkpoint]
    proc = run_tool(args)
    assert_ok(proc)
    names = sorted(os.listdir(frames))
    pngs = sorted(os.listdir(osp.join(out, 'exp0')))
    assert pngs == [n.replace('.jpg', '.png') for n in names]
    mask = np.array(Image.open(osp.join(out, 'exp0', pngs[0])))
    assert mask.shape == (480, 854) and set(np.unique(mask)) <= {0, 255}
    assert Image.open(osp.join(out, 'overlay.gif')).n_frames == len(names)
    summary = json.load(open(osp.join(out, 'results.json')))
    assert [f['frame'] for f in summary['expressions'][0]['frames']] == [n[:-4] for n in names]
    assert sorted(os.listdir(out)) == ['exp0', 'overlay.gif', 'results.json']


@pytest.fixture(scope='module')
def trained(toy_config, tmp_path_factory):
    """One training iteration with tools/train.py (--cfg-options as a user types them)."""
    work = str(tmp_path_factory.mktemp('train') / 'work')
    proc = run_tool([
        'tools/train.py', toy_config, '--work-dir', work, '--cfg-options', 'train_cfg.max_iters=1',
        'param_scheduler.1.end=1', 'param_scheduler.1.milestones=[1]',
        'default_hooks.checkpoint.interval=1'
    ])
    assert_ok(proc)
    return work


def test_train_one_iteration(trained):
    assert osp.isfile(osp.join(trained, 'iter_1.pth'))
    with open(osp.join(trained, 'last_checkpoint')) as f:
        assert f.read().strip().endswith('iter_1.pth')


def test_test_tool(trained, toy_config, tmp_path):
    out = str(tmp_path / 'preds.pkl')
    proc = run_tool([
        'tools/test.py', toy_config,
        osp.join(trained, 'iter_1.pth'), '--work-dir',
        str(tmp_path / 'w'), '--out', out
    ])
    assert_ok(proc)
    assert osp.isfile(out) and 'J&F' in proc.stdout + proc.stderr


def test_train_refuses_a_mistyped_cfg_option(toy_config, tmp_path):
    proc = run_tool([
        'tools/train.py', toy_config, '--work-dir',
        str(tmp_path / 'w'), '--cfg-options', 'train_cfg.max_iter=5'
    ])
    assert_clean_error(proc, "'train_cfg.max_iter'", "did you mean 'train_cfg.max_iters'")
    assert not osp.exists(tmp_path / 'w')


def test_browse_dataset(toy_config, tmp_path):
    out = str(tmp_path / 'browse')
    proc = run_tool([
        'tools/misc/browse_rvos_dataset.py', toy_config, '--output-dir', out, '--num-samples', '1'
    ])
    assert_ok(proc)
    assert len([n for n in os.listdir(out) if n.endswith('.png')]) == 1


def test_toy_lookalike_probe(trained, toy_config, toy_root, tmp_path):
    out = str(tmp_path / 'probe.json')
    proc = run_tool([
        'tools/analysis_tools/toy_lookalike_probe.py', toy_config,
        osp.join(trained, 'iter_1.pth'), '--data-root', toy_root, '--max-exps', '1', '--out', out
    ])
    assert_ok(proc)
    assert osp.isfile(out)


def test_benchmark_loader(toy_config, toy_root):
    proc = run_tool([
        'tools/analysis_tools/benchmark_loader.py', '--config', toy_config, '--data-root', toy_root,
        '--workers', '0', '--num-clips', '2', '--warmup', '0', '--num-frames', '2'
    ])
    assert_ok(proc)
    assert 'clips/s' in proc.stdout
    proc = run_tool(['tools/analysis_tools/benchmark_loader.py', '--config', 'configs/nope.py'])
    assert_clean_error(proc, 'config not found: configs/nope.py')


def test_benchmark(tmp_path):
    out = str(tmp_path / 'bench.json')
    proc = run_tool([
        'tools/analysis_tools/benchmark.py', '--config', TINY_MODEL, '--frames', '2',
        '--drop-rates', '0.5', '--size', '64', '96', '--repeat', '1', '--no-flops', '--device',
        'cpu', '--out', out
    ])
    assert_ok(proc)
    assert osp.isfile(out)


def test_benchmark_metrics():
    proc = run_tool([
        'tools/analysis_tools/benchmark_metrics.py', '--frames', '4', '--video-len', '2',
        '--height', '48', '--width', '64'
    ])
    assert_ok(proc)


def test_param_table():
    proc = run_tool(['tools/analysis_tools/param_table.py', TINY_MODEL])
    assert_ok(proc)
    assert 'backbone' in proc.stdout


def test_demo_memory():
    proc = run_tool(['tools/analysis_tools/demo_memory.py', '--frames', '2', '--scale', '64', '48'])
    assert_ok(proc)
    assert 'peak RSS' in proc.stdout


def test_eval_masks_on_judo(tmp_path):
    _judo()
    out = str(tmp_path / 'jf.json')
    proc = run_tool([
        'tools/eval_masks.py', JUDO,
        osp.join(JUDO, 'predictions', 'rvos'), '--layout', 'object', '--out', out
    ])
    assert_ok(proc)
    assert 'J&F' in proc.stdout and osp.isfile(out)


def test_davis_to_ytvos(tmp_path):
    root = str(tmp_path / 'davis')
    write_davis_tree(root)
    out = str(tmp_path / 'out')
    proc = run_tool([
        'tools/dataset_converters/davis_to_ytvos.py', '--davis-root', root, '--out', out, '--mode',
        'copy'
    ])
    assert_ok(proc)
    assert json.loads(proc.stdout)['valid_videos'] == 1
    assert osp.isfile(osp.join(out, 'valid', 'JPEGImages', 'car', '00002.jpg'))
    # a re-run with the same inputs writes the same meta files: accepted
    assert_ok(
        run_tool([
            'tools/dataset_converters/davis_to_ytvos.py', '--davis-root', root, '--out', out,
            '--mode', 'copy'
        ]))


def test_errors_are_clear_and_debuggable(tmp_path):
    """A missing config: ``error: ...`` and exit 2; MMRVOS_DEBUG=1 shows the traceback."""
    args = ['tools/train.py', str(tmp_path / 'nope.py'), '--work-dir', str(tmp_path / 'w')]
    assert_clean_error(run_tool(args), 'config not found', 'nope.py')
    debug = run_tool(args, env={'MMRVOS_DEBUG': '1'})
    assert debug.returncode != 0 and 'Traceback' in debug.stderr


def test_cfg_options_refuse_keys_that_match_nothing():
    """A typo is an error naming the nearest key; a deliberately new key takes a leading +."""
    from mmrvos.apis.config import load_config, merge_cfg_options
    cfg = load_config(osp.join(REPO_ROOT, TOY_CONFIG))
    with pytest.raises(
            ValueError, match=r"'train_cfg.max_iter' \(did you mean "
            r"'train_cfg.max_iters'\?\)") as err:
        merge_cfg_options(cfg, {'train_cfg.max_iter': 5, 'model.test_cfg.chunk_sz': 2})
    assert "'model.test_cfg.chunk_size'" in str(err.value)
    assert cfg.train_cfg.max_iters == 2000  # nothing merged
    merge_cfg_options(cfg, {
        'train_cfg.max_iters': 5,
        'param_scheduler.1.end': 5,
        '+model.test_cfg.autocast': 'bf16'
    })
    assert cfg.train_cfg.max_iters == 5 and cfg.param_scheduler[1].end == 5
    assert cfg.model.test_cfg.autocast == 'bf16'
    with pytest.raises(ValueError, match='param_scheduler.7.end'):
        merge_cfg_options(cfg, {'param_scheduler.7.end': 1})
    with pytest.raises(ValueError, match='give a list of numbers whole'):
        merge_cfg_options(cfg, {'model.backbone.depths.1': 3})

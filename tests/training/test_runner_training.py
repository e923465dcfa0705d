"""Training with mmengine's Runner: tools/train.py, kill-and-resume, 2-process DDP (gloo)."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmrvos.datasets.synthetic import make_toy_rvos
from rvos_test_utils import REPO_ROOT

CONFIG = osp.join(REPO_ROOT, 'configs', 'referdino', 'referdino_tiny_1xb2_toy-rvos.py')
HERE = osp.dirname(osp.abspath(__file__))


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy'))
    make_toy_rvos(root, seed=3, num_train=3, num_valid=1, num_frames=6, size=(96, 64))
    return root


MICRO = """
_base_ = [{base!r}]
custom_imports = dict(imports=['mmrvos', 'runner_probe'], allow_failed_imports=False)
custom_hooks = [dict(type='RNGStateHook'), dict(type='SaveRankParamsHook'),
                dict(type='RecordBatchesHook')]
model = dict(num_queries=8, decoder=dict(num_layers=2))
train_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={root!r}, pipeline=[
        dict(type='ClipSample', num_frames=2, local_range=2, reverse_prob=0.0),
        dict(type='TransformBroadcaster', share_random_params=True, transforms=[
            dict(type='LoadRVOSFrame'), dict(type='LoadRVOSAnnotations'),
            dict(type='RVOSRandomFlip', prob=0.5),
            dict(type='Resize', scale=(96, 64), keep_ratio=True)]),
        dict(type='FilterClipWithoutTarget'),
        dict(type='PackRVOSInputs')]))
train_cfg = dict(max_iters={iters}, val_interval={never})
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
default_hooks = dict(checkpoint=dict(interval=2, max_keep_ckpts=5), logger=dict(interval=1))
randomness = dict(seed=0)
"""


def _micro_config(tmp_path, toy_root, max_iters):
    """A micro run of the toy config: 8 queries, 2 decoder layers, 2-frame 96x64 clips, no
    validation, a hook that saves every rank's parameters at the end."""
    path = tmp_path / f'micro_{max_iters}.py'
    path.write_text(
        MICRO.format(base=CONFIG, root=toy_root + '/', iters=max_iters, never=100 * max_iters))
    return str(path)


def _run_train(args):
    """Run tools/train.py's main() in this process."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)  # runner_probe (custom_imports)
    spec = importlib.util.spec_from_file_location('mmrvos_train_cli',
                                                  osp.join(REPO_ROOT, 'tools', 'train.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli.main(args)


def _load(path):
    return torch.load(path, map_location='cpu')


def test_kill_and_resume_matches_uninterrupted_run(toy_root, tmp_path):
    full = str(tmp_path / 'full')
    config = _micro_config(tmp_path, toy_root, 4)
    _run_train([config, '--work-dir', full])
    ref = _load(osp.join(full, 'iter_4.pth'))

    # "killed" after iteration 2: a second run resumes from iter_2.pth
    part = str(tmp_path / 'part')
    os.makedirs(part)
    for name in ('iter_2.pth', ):
        with open(osp.join(full, name), 'rb') as src, open(osp.join(part, name), 'wb') as dst:
            dst.write(src.read())
    runner = _run_train([config, '--work-dir', part, '--resume', osp.join(part, 'iter_2.pth')])
    assert runner.iter == 4
    got = _load(osp.join(part, 'iter_4.pth'))
    assert got['meta']['iter'] == ref['meta']['iter'] == 4
    # the resumed run trained iterations 3 and 4 exactly as the uninterrupted one did
    assert got['param_schedulers'] == ref['param_schedulers']
    assert got['optimizer']['param_groups'][0]['lr'] == ref['optimizer']['param_groups'][0]['lr']
    for key, state in ref['optimizer']['state'].items():
        for name in ('exp_avg', 'exp_avg_sq'):
            torch.testing.assert_close(
                got['optimizer']['state'][key][name], state[name], rtol=1e-5, atol=1e-7)
        assert float(got['optimizer']['state'][key]['step']) == 4
    for k, v in ref['state_dict'].items():
        torch.testing.assert_close(got['state_dict'][k], v, rtol=1e-5, atol=1e-6)
    # the loss history continued across the resume (iterations 1..4)
    assert len(got['message_hub']['log_scalars']['train/loss'].data[0]) == 4


def test_train_refuses_to_overwrite_checkpoints_without_resume(toy_root, tmp_path):
    work = str(tmp_path / 'w')
    os.makedirs(work)
    open(osp.join(work, 'iter_2.pth'), 'wb').close()
    with pytest.raises(FileExistsError, match='already holds checkpoints'):
        _run_train([_micro_config(tmp_path, toy_root, 2), '--work-dir', work])


def test_two_process_ddp_with_gloo_keeps_ranks_identical(toy_root, tmp_path):
    work = str(tmp_path / 'ddp')
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        PORT='29517',
        OMP_NUM_THREADS='1',
        PYTHONPATH=os.pathsep.join([HERE, REPO_ROOT,
                                    os.environ.get('PYTHONPATH', '')]))
    cmd = [
        'bash',
        osp.join(REPO_ROOT, 'tools', 'dist_train.sh'),
        _micro_config(tmp_path, toy_root, 5), '2', '--work-dir', work
    ]
    proc = subprocess.run(cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0 = _load(osp.join(work, 'params_rank0.pth'))
    r1 = _load(osp.join(work, 'params_rank1.pth'))
    assert r0['iter'] == r1['iter'] == 5
    init = _load(osp.join(work, 'iter_2.pth'))['state_dict']
    changed = 0
    for k, v in r0['state'].items():
        assert torch.equal(v, r1['state'][k]), k
        changed += int(not torch.equal(v, init[k])) if k in init else 0
    assert changed > 0  # the ranks trained (parameters moved after iteration 2)

"""mmengine checkpoints save and resume under torch's default ``weights_only=True``."""
import itertools
import os.path as osp
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner import checkpoint as mm_ckpt
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

import mmrvos  # noqa: F401  (installs mmrvos.compat)
from mmrvos.compat import UnsafeCheckpointError
from mmrvos.engine import RVOSRunner, safe_checkpoint_loaders, safe_load_checkpoint


class _ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, targets=None, mode='tensor'):
        out = self.linear(inputs)  # (B, 2) -> (B, 1)
        if mode == 'loss':
            return dict(loss=((out.squeeze(-1) - targets)**2).mean())
        return out


class _ToyData(torch.utils.data.Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        x = torch.tensor([float(i), 1.0])
        return dict(inputs=x, targets=torch.tensor(2.0 * i - 1))


_RUN_IDS = itertools.count()


class Evil:
    """A class that must never be unpickled from a checkpoint."""


def _runner(work_dir, max_iters, resume=False, load_from=None, runner_cls=Runner):
    return runner_cls(
        model=_ToyModel(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=_ToyData(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=[dict(type='MultiStepLR', by_epoch=False, milestones=[1], gamma=0.5)],
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=1000),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        resume=resume,
        load_from=load_from,
        # a name of its own: mmengine's message hub is a singleton per experiment name, and
        # two runners started within the same second would share the default (time stamp)
        experiment_name=f'ckpt_compat_{next(_RUN_IDS)}',
        default_scope='mmdet',
        randomness=dict(seed=0))


@pytest.mark.parametrize('runner_cls', [Runner, RVOSRunner])
def test_runner_trains_checkpoints_and_resumes_with_weights_only(tmp_path, runner_cls):
    work = str(tmp_path / 'run')
    first = _runner(work, max_iters=2, runner_cls=runner_cls)
    first.train()
    ckpt = osp.join(work, 'iter_2.pth')
    assert osp.isfile(ckpt)

    # torch's own default load (weights_only=True) accepts the whole checkpoint
    raw = torch.load(ckpt)
    assert raw['meta']['iter'] == 2
    hub = raw['message_hub']['log_scalars']
    assert 'train/loss' in hub and len(hub['train/loss'].data[0]) == 2

    second = _runner(work, max_iters=3, resume=True, load_from=ckpt, runner_cls=runner_cls)
    second.train()
    assert second.iter == 3
    # the optimizer state and the scheduler survived the round trip
    state = second.optim_wrapper.optimizer.state_dict()['state']
    assert int(state[0]['step']) == 3
    assert second.optim_wrapper.get_lr()['lr'][0] == pytest.approx(0.005)
    # the message hub's history continued instead of restarting
    losses = second.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 3


def test_foreign_pickled_object_is_refused_with_file_and_class(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict=dict(w=torch.zeros(1)), payload=Evil()), path)
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_load_checkpoint(path, map_location='cpu')
    msg = str(err.value)
    assert path in msg and 'Evil' in msg
    assert isinstance(err.value, pickle.UnpicklingError)
    # mmengine's own entry point, inside the context, uses the same loader
    with safe_checkpoint_loaders():
        assert CheckpointLoader._get_checkpoint_loader(path).__name__ == 'load_from_local_safe'
        with pytest.raises(UnsafeCheckpointError, match='Evil'):
            _load_checkpoint(path, map_location='cpu')
    # ... and outside it mmengine's table is untouched (import mmrvos replaces no loader)
    assert CheckpointLoader._get_checkpoint_loader(path) is mm_ckpt.load_from_local


def test_missing_checkpoint_names_the_file(tmp_path):
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        safe_load_checkpoint(missing)
    with safe_checkpoint_loaders(), pytest.raises(FileNotFoundError, match='nope.pth'):
        _load_checkpoint(missing)

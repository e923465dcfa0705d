"""`make demo`'s training step: the budget, learning-rate drop, evaluation points and seed it
hands to tools/train.py (the runs themselves are what `make demo` measures)."""

import pytest

from rvos_test_utils import load_script


@pytest.fixture
def run_demo():
    return load_script('tools/misc/run_demo.py')


class _RecordingTrain:
    """Stands in for tools/train.py: records its command line."""

    def __init__(self):
        self.argv = None

    def main(self, argv):
        self.argv = list(argv)
        return 'runner'


def _options(argv):
    i = argv.index('--cfg-options')
    return dict(opt.split('=', 1) for opt in argv[i + 1:])


@pytest.mark.parametrize('iters,evals,interval,drop', [(1000, 1, 1000, 875), (300, 2, 150, 262),
                                                       (8, 20, 1, 7)])
def test_train_sets_budget_drop_and_evaluations(run_demo, monkeypatch, iters, evals, interval,
                                                drop):
    fake = _RecordingTrain()
    monkeypatch.setattr(run_demo, '_tool', lambda name: fake if name == 'train' else None)
    assert run_demo.train('cfg.py', 'work/a b', iters, evals) == 'runner'
    assert fake.argv[:3] == ['cfg.py', '--work-dir', 'work/a b']
    opts = _options(fake.argv)
    assert opts['train_cfg.max_iters'] == str(iters)
    assert opts['param_scheduler.1.end'] == str(iters)
    assert opts['param_scheduler.1.milestones'] == f'[{drop}]'  # 10x lower for the last 1/8
    assert opts['train_cfg.val_interval'] == str(interval)
    assert opts['default_hooks.checkpoint.interval'] == str(iters)  # the file stage 2 loads
    assert 'randomness.seed' not in opts  # the config's own seed


def test_train_passes_the_seed_and_extra_options_last(run_demo, monkeypatch):
    fake = _RecordingTrain()
    monkeypatch.setattr(run_demo, '_tool', lambda name: fake)
    run_demo.train('cfg.py', 'w', 300, 2,
                   ['load_from=s1.pth', 'randomness.seed=3', 'train_cfg.val_interval=7'])
    opts = _options(fake.argv)
    assert opts['randomness.seed'] == '3'
    assert opts['load_from'] == 's1.pth'
    # mmengine applies --cfg-options in order: a caller's option overrides the defaults
    assert fake.argv[-1] == 'train_cfg.val_interval=7'

"""Training hooks of mmrvos: the trainable-parameter table, random state across resume."""
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ...models.layers.lora import parameter_table


@HOOKS.register_module()
class ParameterTableHook(Hook):
    """Log a table of trainable vs frozen parameter counts per module before training.

    Args:
        depth (int): how many name components make a row. Defaults to 1.
    """

    priority = 'VERY_LOW'

    def __init__(self, depth: int = 1) -> None:
        self.depth = depth

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        runner.logger.info('Parameters (trainable vs frozen):\n' +
                           parameter_table(model, self.depth))


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Keep torch's random state across a kill-and-resume.

    mmengine checkpoints do not hold random-number-generator states, so after ``--resume`` the
    model's own randomness (dropout, e.g. in the text model) would differ from the run that was
    interrupted. This hook stores torch's CPU (and CUDA) generator states in every checkpoint
    and restores them right before the first resumed iteration, *after* the data loader has
    been advanced past the trained iterations (the data pipeline's numpy randomness is replayed
    by that advance). States are those of the saving process (rank 0 in distributed runs).
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._pending = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        import torch
        state = dict(torch=torch.get_rng_state())
        if torch.cuda.is_available():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['rng_state'] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get('rng_state')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._pending is None:
            return
        import torch
        torch.set_rng_state(self._pending['torch'])
        if 'cuda' in self._pending and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self._pending['cuda'])
        self._pending = None

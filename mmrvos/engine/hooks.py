"""Hooks of mmrvos."""
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ..models.layers.lora import parameter_table


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

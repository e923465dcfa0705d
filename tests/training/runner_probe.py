"""Test-only hook: every rank saves its parameters after training (DDP consistency check)."""
import os.path as osp

import torch
from mmdet.registry import HOOKS
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


@HOOKS.register_module()
class SaveRankParamsHook(Hook):

    def after_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save(dict(iter=runner.iter, state=state),
                   osp.join(runner.work_dir, f'params_rank{get_rank()}.pth'))

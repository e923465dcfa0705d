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
        torch.save(
            dict(iter=runner.iter, state=state),
            osp.join(runner.work_dir, f'params_rank{get_rank()}.pth'))


@HOOKS.register_module()
class RecordBatchesHook(Hook):
    """Test-only: remember which clip (video, expression, frames, flip) each iteration saw."""

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        clip = data_batch['data_samples'][0]
        frames = clip.video_data_samples
        runner.message_hub.update_info(
            f'probe_batch_{runner.iter}',
            (clip.metainfo.get('video_id'), clip.metainfo.get('exp_id'),
             tuple(f.metainfo.get('frame_id')
                   for f in frames), bool(frames[0].metainfo.get('flip'))))

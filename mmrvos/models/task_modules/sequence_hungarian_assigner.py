"""Sequence-level Hungarian matching of query sequences to target sequences."""
import warnings
from typing import List, Sequence, Tuple

import torch
from mmdet.models.task_modules.assigners.match_cost import BaseMatchCost
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from ..losses.projection_loss import max_projections


@TASK_UTILS.register_module()
class ProjectionDiceCost(BaseMatchCost):
    """Match cost of the projection loss: ``1 - Dice`` on the x- and y-max-projections.

    Uses ``pred_instances.masks`` (Q, h, w) logits and ``gt_instances.masks`` (K, h, w).
    Returns (Q, K) costs times ``weight``.
    """

    def __init__(self, weight: float = 1.0, eps: float = 1.0) -> None:
        super().__init__(weight=weight)
        self.eps = eps

    def _dice(self, pred: Tensor, gt: Tensor) -> Tensor:
        inter = torch.einsum('qn,kn->qk', pred, gt)
        denom = pred.sum(-1)[:, None] + gt.sum(-1)[None, :]
        return 1 - (2 * inter + self.eps) / (denom + self.eps)

    def __call__(self,
                 pred_instances: InstanceData,
                 gt_instances: InstanceData,
                 img_meta=None,
                 **kwargs) -> Tensor:
        px, py = max_projections(pred_instances.masks.sigmoid())
        gx, gy = max_projections(gt_instances.masks.float())
        return (self._dice(px, gx) + self._dice(py, gy)) * self.weight


@TASK_UTILS.register_module()
class SequenceHungarianAssigner:
    """Assign each target *sequence* to one query *sequence*.

    The cost of pairing query ``q`` with target ``k`` is the sum of mmdet match costs
    (e.g. ``FocalLossCost``, ``BBoxL1Cost``, ``IoUCost``, mask ``FocalLossCost`` with
    ``binary_input=True``, ``DiceCost``, :class:`ProjectionDiceCost`) computed on every frame
    where target ``k`` is valid and **averaged over those frames**. The (Q, K) sequence cost is
    solved with scipy's Hungarian solver: exactly one positive query sequence per target
    sequence. A multi-object expression (MeViS) is one merged target.

    Args:
        match_costs (list[dict]): mmdet match-cost configs (``TASK_UTILS``).
    """

    def __init__(self, match_costs: Sequence[dict]) -> None:
        self.match_costs = [TASK_UTILS.build(cfg) for cfg in match_costs]

    @torch.no_grad()
    def sequence_cost(self, preds: List[InstanceData], gts: List[InstanceData],
                      img_metas: List[dict], valid: Tensor) -> Tensor:
        """Frame-averaged cost.

        Args:
            preds (list[InstanceData]): T frames, each with ``scores`` (Q, 1) logits,
                ``bboxes`` (Q, 4) xyxy in pixels and optionally ``masks`` (Q, h, w) logits.
            gts (list[InstanceData]): T frames, each with ``labels`` (K,), ``bboxes`` (K, 4)
                xyxy pixels and optionally ``masks`` (K, h, w).
            img_metas (list[dict]): T dicts with ``img_shape``.
            valid (Tensor): (T, K) bool, target k visible and annotated on frame t.

        Returns:
            Tensor: (Q, K) cost; a target valid on no frame gets a zero column.
        """
        num_q = len(preds[0].scores)
        num_k = valid.shape[1]
        total = preds[0].scores.new_zeros(num_q, num_k)
        for t in range(len(preds)):
            if not valid[t].any():
                continue
            frame_cost = sum(cost(preds[t], gts[t], img_metas[t]) for cost in self.match_costs)
            total = total + frame_cost * valid[t][None].float()
        return total / valid.sum(0).clamp_min(1)[None].float()

    def assign(self, preds: List[InstanceData], gts: List[InstanceData], img_metas: List[dict],
               valid: Tensor) -> Tuple[Tensor, Tensor]:
        """Hungarian assignment.

        Returns:
            tuple: ``query_index`` (K,) long and ``target_index`` (K,) long, the matched pairs.
        """
        cost = self.sequence_cost(preds, gts, img_metas, valid)
        if not bool(torch.isfinite(cost).all()):
            # degenerate predictions (e.g. saturated logits or boxes early in training) can
            # make a cost term non-finite; such pairs are ranked last instead of crashing scipy
            warnings.warn(f'{int((~torch.isfinite(cost)).sum())} non-finite sequence matching '
                          'costs replaced by a large value')
            cost = torch.nan_to_num(cost, nan=1e8, posinf=1e8, neginf=-1e8)
        rows, cols = linear_sum_assignment(cost.cpu().float().numpy())
        device = cost.device
        return (torch.as_tensor(rows, dtype=torch.long, device=device),
                torch.as_tensor(cols, dtype=torch.long, device=device))

"""Projection loss (BoxInst): Dice on the x- and y-max-projections of a mask."""
from typing import Optional, Tuple

import torch.nn as nn
from mmdet.models.losses.dice_loss import dice_loss
from mmdet.registry import MODELS
from torch import Tensor


def max_projections(masks: Tensor) -> Tuple[Tensor, Tensor]:
    """Max-projections of (n, h, w) masks onto the x axis (n, w) and the y axis (n, h)."""
    return masks.max(dim=1).values, masks.max(dim=2).values


@MODELS.register_module()
class ProjectionLoss(nn.Module):
    """``dice(proj_x(sigmoid(pred)), proj_x(gt)) + dice(proj_y(...), proj_y(gt))``.

    Uses mmdet's ``dice_loss`` (naive Dice with smoothing ``eps``) on each projection.

    Args:
        loss_weight (float): weight. eps (float): Dice smoothing (1.0 as the official code).
        reduction (str): 'none' | 'mean' | 'sum'.
    """

    def __init__(self, loss_weight: float = 1.0, eps: float = 1.0, reduction: str = 'mean') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.eps = eps
        self.reduction = reduction

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Args: pred (n, h, w) mask logits; target (n, h, w) binary; weight (n,) optional.

        Returns: the loss (scalar, or (n,) with reduction 'none').
        """
        reduction = reduction_override or self.reduction
        px, py = max_projections(pred.sigmoid())
        tx, ty = max_projections(target.float())
        loss = (
            dice_loss(
                px,
                tx,
                weight,
                eps=self.eps,
                reduction=reduction,
                naive_dice=True,
                avg_factor=avg_factor) + dice_loss(
                    py,
                    ty,
                    weight,
                    eps=self.eps,
                    reduction=reduction,
                    naive_dice=True,
                    avg_factor=avg_factor))
        return self.loss_weight * loss

"""MPG-SAM 2's mask-text similarity loss (eq. 5-6)."""
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class MaskTextSimilarityLoss(nn.Module):
    """MSE between two cosine similarities per frame: the predicted mask's and the GT mask's
    with the sentence score map (the sentence's scalar score broadcast over the frame).

    As in the official code, the sentence map is constant over the frame, so
    ``cos(m, s * 1) = sign(s) * sum(m) / (sqrt(HW) * ||m||)``: for a positive score the loss
    compares how spread out the predicted and the GT masks are, and no gradient reaches the
    score's sign-preserving scale (it is kept so the official weights load and the loss is
    the official one).

    Args:
        loss_weight (float): 2.0 in the official recipe.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, mask_logits: Tensor, gt_masks: Tensor, sentence_scores: Tensor) -> Tensor:
        """(F, H, W) mask logits, (F, H, W) GT masks, (F,) sentence scores of F frames."""
        probs = mask_logits.sigmoid().flatten(1)
        sentence = sentence_scores.to(probs.dtype)[:, None].expand_as(probs)
        pred_sim = F.cosine_similarity(probs, sentence, dim=1)
        gt_sim = F.cosine_similarity(gt_masks.flatten(1).to(probs.dtype), sentence, dim=1)
        return self.loss_weight * F.mse_loss(pred_sim, gt_sim)

"""Activation checkpointing of a module with torch.utils.checkpoint (no fairscale needed)."""
import torch.nn as nn
from torch.utils.checkpoint import checkpoint


class ActivationCheckpoint(nn.Module):
    """Run ``module`` under activation checkpointing in training (recompute in backward).

    Keyword arguments are passed through (non-reentrant checkpointing), so it can wrap mmdet's
    encoder and fusion layers, which are called with keywords. In eval mode, or when no input
    needs gradients, it is a plain call. The state-dict keys gain a ``module.`` level.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        if self.training and __import__('torch').is_grad_enabled():
            return checkpoint(self.module, *args, use_reentrant=False, **kwargs)
        return self.module(*args, **kwargs)


def wrap_encoder_checkpointing(encoder: nn.Module, num_layers: int) -> int:
    """Checkpoint the first ``num_layers`` visual and fusion layers of a Grounding DINO encoder.

    Returns:
        int: number of wrapped modules.
    """
    wrapped = 0
    for name in ('layers', 'fusion_layers'):
        layers = getattr(encoder, name, None)
        if layers is None:
            continue
        for i in range(min(num_layers, len(layers))):
            layers[i] = ActivationCheckpoint(layers[i])
            wrapped += 1
    return wrapped

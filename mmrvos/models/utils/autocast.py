"""bf16 inference under ``torch.autocast`` with each weight cast once per call."""
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn


@contextmanager
def inference_autocast(model: nn.Module, device_type: str, enabled: bool) -> Iterator[None]:
    """``torch.autocast(device_type, torch.bfloat16)`` for an inference call of ``model``,
    with every floating-point weight cast to bf16 once per call instead of once per use.

    autocast keeps the bf16 copy of a weight for the rest of the autocast block only when the
    weight is a leaf that requires grad; frozen weights (the Swin and BERT backbones, every
    weight of a LoRA-merged model at inference) would be cast again on every call of their
    layer, i.e. once per frame. Inside this block, with gradients off, those weights are
    marked ``requires_grad`` (no graph is recorded without grad mode) and put back on exit.
    With gradients on, or ``enabled=False``, it is plain ``torch.autocast``.
    """
    frozen = []
    if enabled and not torch.is_grad_enabled():
        frozen = [p for p in model.parameters() if not p.requires_grad and p.is_floating_point()]
    for p in frozen:
        p.requires_grad_(True)
    try:
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=enabled):
            yield
    finally:
        for p in frozen:
            p.requires_grad_(False)

"""``inference_autocast``: bf16 autocast for an inference call with each frozen weight cast
once per call (autocast caches only weights that require grad)."""
import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

from mmrvos.models.utils.autocast import inference_autocast


class CastCounter(TorchDispatchMode):
    """Counts ``aten._to_copy`` calls on tensors of one shape (autocast's casts)."""

    def __init__(self, shape):
        super().__init__()
        self.shape, self.count = tuple(shape), 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._to_copy.default and tuple(args[0].shape) == self.shape:
            self.count += 1
        return func(*args, **(kwargs or {}))


def run_three_times(layer, ctx):
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), CastCounter(layer.weight.shape) as counter, ctx:
        outs = [layer(x) for _ in range(3)]
    return counter.count, outs


def test_a_frozen_weight_is_cast_once_per_call_not_once_per_use():
    layer = nn.Linear(4, 8).requires_grad_(False)
    plain, plain_outs = run_three_times(layer, torch.autocast('cpu', dtype=torch.bfloat16))
    ours, our_outs = run_three_times(layer, inference_autocast(layer, 'cpu', enabled=True))
    assert plain == 3 and ours == 1
    for a, b in zip(plain_outs, our_outs):  # the same cast, the same result
        assert b.dtype == torch.bfloat16 and torch.equal(a, b)
    # flags put back: frozen stays frozen, trainable stays trainable
    assert not layer.weight.requires_grad and not layer.bias.requires_grad
    mixed = nn.Linear(4, 8)
    mixed.bias.requires_grad_(False)
    with torch.no_grad(), inference_autocast(mixed, 'cpu', enabled=True):
        assert mixed.weight.requires_grad and mixed.bias.requires_grad
    assert mixed.weight.requires_grad and not mixed.bias.requires_grad


def test_flags_are_restored_after_an_error_and_nothing_changes_with_grad_or_disabled():
    layer = nn.Linear(4, 8).requires_grad_(False)
    try:
        with torch.no_grad(), inference_autocast(layer, 'cpu', enabled=True):
            raise RuntimeError('boom')
    except RuntimeError:
        pass
    assert not layer.weight.requires_grad
    # with grad mode on (training code), frozen weights must not start to collect gradients
    with inference_autocast(layer, 'cpu', enabled=True):
        assert not layer.weight.requires_grad
        assert layer(torch.randn(2, 4)).dtype == torch.bfloat16
    with torch.no_grad(), inference_autocast(layer, 'cpu', enabled=False):
        assert not layer.weight.requires_grad
        assert layer(torch.randn(2, 4)).dtype == torch.float32

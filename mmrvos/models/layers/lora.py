"""LoRA injection (peft) and the freezing policy of ReferDINO fine-tuning."""
import re
from collections import OrderedDict
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence

import torch.nn as nn

DEFAULT_LORA_EXCLUDE = ('out_proj', 'bbox_embed', 'reg_branches')


def lora_target_names(module: nn.Module,
                      exclude: Sequence[str] = DEFAULT_LORA_EXCLUDE) -> List[str]:
    """Names (relative to ``module``) of the ``nn.Linear`` layers that get LoRA.

    A layer is skipped when any component of its dotted name contains one of ``exclude``
    (the official rule: ``out_proj`` of ``nn.MultiheadAttention`` and box-regression MLPs).
    """
    names = []
    for name, sub in module.named_modules():
        if not isinstance(sub, nn.Linear) or not name:
            continue
        if any(pat in part for part in name.split('.') for pat in exclude):
            continue
        names.append(name)
    return names


def inject_lora(model: nn.Module,
                targets: Sequence[str] = ('encoder', 'decoder'),
                rank: int = 32,
                alpha: float = 1.0,
                dropout: float = 0.0,
                exclude: Sequence[str] = DEFAULT_LORA_EXCLUDE) -> int:
    """Wrap the Linear layers under each ``targets`` submodule with peft LoRA, in place.

    ``alpha=1`` with ``rank=32`` gives the official scaling ``alpha / rank = 1/32``
    (loralib's default). ``B`` starts at zero, so the wrapped model computes exactly what the
    original did until trained.

    Returns:
        int: number of wrapped layers.
    """
    from peft import LoraConfig, inject_adapter_in_model

    total = 0
    for prefix in targets:
        sub = model.get_submodule(prefix)
        names = lora_target_names(sub, exclude)
        if not names:
            continue
        cfg = LoraConfig(
            r=rank, lora_alpha=alpha, lora_dropout=dropout, bias='none', target_modules=names)
        inject_adapter_in_model(cfg, sub)
        total += len(names)
    return total


def reset_lora(model: nn.Module) -> None:
    """Re-initialise every LoRA adapter (A random, B zero), e.g. after a generic init."""
    for module in model.modules():
        if hasattr(module, 'reset_lora_parameters') and hasattr(module, 'lora_A'):
            for name in list(module.lora_A.keys()):
                module.reset_lora_parameters(name, True)


def lora_layers(model: nn.Module) -> List[nn.Module]:
    """The peft LoRA layers of ``model`` (empty when peft is absent or nothing is wrapped)."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:  # pragma: no cover - peft is a runtime requirement
        return []
    return [m for m in model.modules() if isinstance(m, LoraLayer)]


@contextmanager
def merged_lora(model: nn.Module) -> Iterator[int]:
    """Run a block with every unmerged LoRA adapter of ``model`` merged into its base weight.

    Inside, a wrapped Linear costs what the plain Linear costs (``W + s * B A`` is computed
    once instead of two extra matmuls per call), as the official code's loralib layers do in
    ``eval()``. On exit the base weights are restored *bit for bit* from a copy (not by
    subtracting the delta again, which would round), so training, checkpoints and exact
    resume never see merged weights.

    Yields:
        int: the number of layers merged here (0 when none, or all were merged already).
    """
    layers = [m for m in lora_layers(model) if not m.merged and m.active_adapters]
    saved = [m.get_base_layer().weight.detach().clone() for m in layers]
    try:
        for m in layers:
            m.merge()
        yield len(layers)
    finally:
        for m, weight in zip(layers, saved):
            m.unmerge()
            m.get_base_layer().weight.data.copy_(weight)


def apply_trainable(model: nn.Module, trainable: Optional[Sequence[str]]) -> None:
    """Freeze every parameter whose name matches none of the ``trainable`` regexes.

    ``None`` leaves everything trainable (full fine-tuning).
    """
    if trainable is None:
        return
    patterns = [re.compile(p) for p in trainable]
    for name, param in model.named_parameters():
        param.requires_grad_(any(p.search(name) for p in patterns))


def parameter_table(model: nn.Module, depth: int = 1) -> str:
    """A text table of trainable / frozen parameter counts per module (first ``depth``
    name components), with the total and the trainable share."""
    rows: Dict[str, List[int]] = OrderedDict()
    for name, param in model.named_parameters():
        key = '.'.join(name.split('.')[:depth])
        row = rows.setdefault(key, [0, 0])
        row[0 if param.requires_grad else 1] += param.numel()
    width = max([len(k) for k in rows] + [6])
    lines = [f'{"module":<{width}} {"trainable":>12} {"frozen":>12}']
    for key, (tr, fr) in rows.items():
        lines.append(f'{key:<{width}} {tr:>12,} {fr:>12,}')
    tr = sum(r[0] for r in rows.values())
    fr = sum(r[1] for r in rows.values())
    share = 100.0 * tr / max(tr + fr, 1)
    lines.append(f'{"total":<{width}} {tr:>12,} {fr:>12,}   trainable share {share:.2f}%')
    return '\n'.join(lines)

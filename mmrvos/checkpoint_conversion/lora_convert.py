"""LoRA state-dict layouts and merging.

Two layouts of a LoRA-wrapped ``Linear`` named ``X`` (rank r, input ``in``, output ``out``):

* **loralib** (official ReferDINO): ``X.weight`` (out, in), ``X.bias`` (out,),
  ``X.lora_A`` (r, in), ``X.lora_B`` (out, r).
* **peft** (mmrvos, :func:`mmrvos.models.layers.lora.inject_lora`): ``X.base_layer.weight``,
  ``X.base_layer.bias``, ``X.lora_A.default.weight`` (r, in), ``X.lora_B.default.weight``
  (out, r).

Both compute ``y = x W^T + b + scaling * x A^T B^T`` with ``scaling = alpha / r``; the official
code uses loralib's default ``lora_alpha = 1`` (rank 32 -> 1/32), mmrvos configs say
``lora=dict(rank=32, alpha=1.0)``. Merging gives the plain ``Linear``
``W' = W + scaling * B @ A``.
"""
import re
from typing import Dict, Iterable, List, Optional, Sequence, Set

from torch import Tensor

PEFT_SUFFIXES = {
    'base_layer.weight': 'weight',
    'base_layer.bias': 'bias',
    'lora_A.default.weight': 'lora_A',
    'lora_B.default.weight': 'lora_B'
}
_PEFT_RE = re.compile(r'^(?P<x>.+)\.(?P<s>base_layer\.weight|base_layer\.bias|'
                      r'lora_A\.default\.weight|lora_B\.default\.weight)$')
_LORALIB_RE = re.compile(r'^(?P<x>.+)\.(?P<s>lora_A|lora_B)$')


def peft_to_loralib(state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Rename peft LoRA keys to the loralib layout (other keys unchanged)."""
    out = {}
    for key, value in state.items():
        m = _PEFT_RE.match(key)
        out[f"{m['x']}.{PEFT_SUFFIXES[m['s']]}" if m else key] = value
    return out


def loralib_modules(state: Dict[str, Tensor]) -> List[str]:
    """Names ``X`` of the loralib-wrapped Linear layers (those with ``X.lora_A``)."""
    return sorted({m['x'] for m in map(_LORALIB_RE.match, state) if m and m['s'] == 'lora_A'})


def peft_modules(state: Dict[str, Tensor]) -> List[str]:
    """Names ``X`` of the peft-wrapped Linear layers (those with ``X.base_layer.weight``)."""
    return sorted(
        {m['x']
         for m in map(_PEFT_RE.match, state) if m and m['s'] == 'base_layer.weight'})


def _check_pair(name: str, state: Dict[str, Tensor]) -> None:
    missing = [f'{name}.{s}' for s in ('weight', 'lora_A', 'lora_B') if f'{name}.{s}' not in state]
    if missing:
        raise KeyError(f'LoRA layer {name!r} is incomplete: missing {missing}')
    w, a, b = state[f'{name}.weight'], state[f'{name}.lora_A'], state[f'{name}.lora_B']
    if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1] or \
            w.shape != (b.shape[0], a.shape[1]):
        raise ValueError(f'LoRA layer {name!r}: shapes weight {tuple(w.shape)}, lora_A '
                         f'{tuple(a.shape)}, lora_B {tuple(b.shape)} do not form W + B@A')


def lora_delta(a: Tensor, b: Tensor, alpha: float = 1.0) -> Tensor:
    """``scaling * B @ A`` with ``scaling = alpha / r`` (computed in float64, cast back)."""
    rank = a.shape[0]
    return (b.double() @ a.double() * (alpha / rank)).to(b.dtype)


def merge_loralib(state: Dict[str, Tensor],
                  alpha: float = 1.0,
                  already_merged: bool = False) -> Dict[str, Tensor]:
    """Merge every loralib pair into its weight and drop the LoRA tensors.

    Args:
        state (dict): loralib-layout state dict.
        alpha (float): LoRA alpha (scaling = alpha / rank). Defaults to 1 (loralib default).
        already_merged (bool): the checkpoint was saved after ``model.eval()``, where loralib
            has already added ``B@A*scaling`` into ``weight``; the LoRA tensors are dropped
            without adding them again.
    """
    out = dict(state)
    for name in loralib_modules(state):
        _check_pair(name, state)
        a, b = out.pop(f'{name}.lora_A'), out.pop(f'{name}.lora_B')
        if not already_merged:
            out[f'{name}.weight'] = state[f'{name}.weight'] + lora_delta(a, b, alpha)
    return out


def unmerge_loralib(state: Dict[str, Tensor], alpha: float = 1.0) -> Dict[str, Tensor]:
    """Subtract ``B@A*scaling`` from every LoRA weight (undo loralib's merge at ``eval()``)."""
    out = dict(state)
    for name in loralib_modules(state):
        _check_pair(name, state)
        out[f'{name}.weight'] = state[f'{name}.weight'] - lora_delta(state[f'{name}.lora_A'],
                                                                     state[f'{name}.lora_B'], alpha)
    return out


def loralib_to_peft(state: Dict[str, Tensor],
                    wrapped: Optional[Iterable[str]] = None) -> Dict[str, Tensor]:
    """Rename loralib keys to the peft layout.

    Args:
        state (dict): loralib-layout state dict.
        wrapped (iterable[str], optional): names of all Linear layers that are peft-wrapped in
            the target model. Layers listed here without LoRA tensors in ``state`` get only
            their ``base_layer`` names (their adapters are left to the model's init). Defaults
            to the layers with LoRA tensors in ``state``.
    """
    with_lora = set(loralib_modules(state))
    names: Set[str] = set(wrapped) if wrapped is not None else set(with_lora)
    stray = with_lora - names
    if stray:
        raise ValueError(f'LoRA tensors for layers the target does not wrap: {sorted(stray)[:5]}'
                         f'{" ..." if len(stray) > 5 else ""}')
    for name in with_lora:
        _check_pair(name, state)
    out = {}
    for key, value in state.items():
        x, _, leaf = key.rpartition('.')
        if x in names and leaf in ('weight', 'bias'):
            out[f'{x}.base_layer.{leaf}'] = value
        elif x in names and leaf in ('lora_A', 'lora_B'):
            out[f'{x}.{leaf}.default.weight'] = value
        else:
            out[key] = value
    return out


def merge_peft(state: Dict[str, Tensor], alpha: float = 1.0) -> Dict[str, Tensor]:
    """peft-layout state dict -> plain names with every adapter merged into its Linear."""
    plain = peft_to_loralib(state)
    return merge_loralib(plain, alpha=alpha)


def lora_rule_modules(
    state: Dict[str, Tensor],
    targets: Sequence[str] = ('encoder', 'decoder'),
    exclude: Sequence[str] = ('out_proj', 'bbox_embed', 'reg_branches')
) -> List[str]:
    """Linear layers that :func:`mmrvos.models.layers.lora.inject_lora` wraps, found from a
    plain (un-wrapped) mmrvos state dict: a 2-D ``X.weight`` under one of ``targets`` whose
    dotted name has no component containing an ``exclude`` pattern. (Under the Grounding DINO
    encoder/decoder every 2-D ``.weight`` belongs to an ``nn.Linear``.)"""
    names = []
    for key, value in state.items():
        x, _, leaf = key.rpartition('.')
        if leaf != 'weight' or value.dim() != 2:
            continue
        if not any(x.startswith(t + '.') for t in targets):
            continue
        if any(p in part for part in x.split('.') for p in exclude):
            continue
        names.append(x)
    return sorted(names)

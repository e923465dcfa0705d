"""Checkpoint conversion: official Grounding DINO / ReferDINO <-> mmrvos.

* :func:`official_to_mmrvos`: an official state dict (Grounding DINO release, or ReferDINO
  release with loralib ``lora_A``/``lora_B``) -> mmrvos names, LoRA kept (peft layout) or
  merged. Shared modules listed several times must hold identical tensors.
* :func:`mmdet_gdino_to_referdino`: mmdet's converted (or mmdet-trained) Grounding DINO ->
  ReferDINO initialisation (LoRA-wrapped Linear layers renamed to ``base_layer``).
* :func:`mmrvos_to_official`: the inverse of :func:`official_to_mmrvos` (tests, exporting).
* :func:`check_against`: compares a converted dict with a model's state dict; anything the
  model would leave uninitialised (outside an explicit allow-list) is an error.

Every function returns the new dict and a :class:`ConversionReport`; every failure raises
:class:`CheckpointConversionError` naming the source and listing the offending keys.
"""
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from torch import Tensor

from .key_rules import (DROPPED_MMDET, DROPPED_OFFICIAL, match_dropped, official_rules,
                        rename_official, rename_ours, same_tensor)
from .lora_convert import (loralib_modules, loralib_to_peft, merge_loralib, peft_modules,
                           peft_to_loralib, unmerge_loralib)

#: mmrvos keys a Grounding DINO checkpoint cannot provide: ReferDINO's new modules and LoRA
#: adapters, initialised by ``model.init_weights()`` before ``load_from``.
REFERDINO_NEW_MODULES = (r'^pixel_decoder\.', r'^temporal\.', r'^bbox_head\.mask_decoder\.',
                         r'\.lora_[AB]\.')


class CheckpointConversionError(ValueError):
    """A checkpoint cannot be converted or would not load completely."""


def _listing(keys: Sequence[str], limit: int = 20) -> str:
    keys = sorted(keys)
    more = f'\n  ... and {len(keys) - limit} more' if len(keys) > limit else ''
    return ''.join(f'\n  {k}' for k in keys[:limit]) + more


@dataclass
class ConversionReport:
    """What a conversion did.

    Attributes:
        source (str): file or description of the input.
        converted (int): keys written.
        dropped (dict): source key -> reason (known keys without a counterpart).
        duplicates (dict): written key -> the source keys that were identical copies of it.
        unmatched (list): source keys no rule knows (an error unless explicitly allowed).
        lora (str): what happened to LoRA ('none', 'kept', 'merged', 'dropped (already merged)').
        missing (list): target keys the model would leave uninitialised (after check).
        allowed_missing (list): missing target keys that the model initialises itself.
        unexpected (list): converted keys the model does not have (after check).
        notes (list): free-text remarks.
    """
    source: str = '<state dict>'
    converted: int = 0
    dropped: Dict[str, str] = field(default_factory=dict)
    duplicates: Dict[str, List[str]] = field(default_factory=dict)
    unmatched: List[str] = field(default_factory=list)
    lora: str = 'none'
    missing: List[str] = field(default_factory=list)
    allowed_missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def format(self) -> str:
        """Human-readable summary."""
        lines = [
            f'source: {self.source}', f'converted keys: {self.converted}', f'LoRA: {self.lora}'
        ]
        if self.duplicates:
            n = sum(len(v) for v in self.duplicates.values())
            lines.append(f'shared modules: {n} identical listings read as {len(self.duplicates)}'
                         ' keys')
        reasons: Dict[str, List[str]] = {}
        for key, why in self.dropped.items():
            reasons.setdefault(why, []).append(key)
        for why, keys in reasons.items():
            lines.append(f'dropped {len(keys)} keys ({why}):{_listing(keys, 4)}')
        if self.unmatched:
            lines.append(f'UNMATCHED {len(self.unmatched)} source keys:{_listing(self.unmatched)}')
        if self.allowed_missing:
            lines.append(f'not in checkpoint, initialised by the model ({len(self.allowed_missing)}'
                         f' keys):{_listing(self.allowed_missing, 6)}')
        if self.missing:
            lines.append(f'MISSING {len(self.missing)} model keys:{_listing(self.missing)}')
        if self.unexpected:
            lines.append(f'UNEXPECTED {len(self.unexpected)} keys:{_listing(self.unexpected)}')
        lines += self.notes
        return '\n'.join(lines)


# ------------------------------------------------------------------ reading
def extract_state_dict(checkpoint, source: str = '<checkpoint>') -> Dict[str, Tensor]:
    """The state dict inside a loaded checkpoint, without a DDP ``module.`` prefix.

    Accepts ``{'model_state_dict': ...}`` (official ReferDINO trainer), ``{'model': ...}``
    (official Grounding DINO), ``{'state_dict': ...}`` (mmengine) or a bare state dict.
    """
    if not isinstance(checkpoint, dict):
        raise CheckpointConversionError(f'{source}: expected a dict, got {type(checkpoint)}')
    state = checkpoint
    for key in ('model_state_dict', 'state_dict', 'model'):
        if key in checkpoint and isinstance(checkpoint[key], dict):
            state = checkpoint[key]
            break
    bad = [k for k, v in state.items() if not isinstance(v, Tensor)]
    if bad or not state:
        raise CheckpointConversionError(
            f'{source}: no state dict found (top-level keys {sorted(checkpoint)[:8]}; '
            f'non-tensor entries {bad[:5]})')
    if all(k.startswith('module.') for k in state):
        state = {k[len('module.'):]: v for k, v in state.items()}
    return OrderedDict(state)


def load_state_dict_file(filename: str) -> Dict[str, Tensor]:
    """Load a local checkpoint with ``weights_only=True`` and return its state dict.

    Raises:
        UnsafeCheckpointError: the file pickles an object outside the allow-list.
    """
    from mmrvos.engine.checkpoint import load_checkpoint_file
    return extract_state_dict(load_checkpoint_file(filename, map_location='cpu'), filename)


def detect_layout(state: Dict[str, Tensor]) -> str:
    """'official' (Grounding DINO / ReferDINO names) or 'mmrvos' (mmdet names)."""
    keys = list(state)
    official = sum(
        k.startswith(('transformer.', 'backbone.0.', 'bert.', 'input_proj.')) for k in keys)
    ours = sum(
        k.startswith(('encoder.', 'decoder.', 'bbox_head.', 'neck.', 'language_model.'))
        for k in keys)
    if official and not ours:
        return 'official'
    if ours and not official:
        return 'mmrvos'
    raise CheckpointConversionError(
        f'cannot tell the key layout ({official} official-style, {ours} mmdet-style keys)')


# ------------------------------------------------------------------ official -> mmrvos
_BOX_MLP = re.compile(r'^(?P<pre>(?:transformer\.decoder\.)?bbox_embed)\.(?P<i>\d+)\.(?P<rest>.+)$')


def check_shared_box_mlp(official: Dict[str, Tensor], source: str) -> None:
    """The official model has one box MLP shared by all decoder layers
    (``dec_pred_bbox_embed_share=True``): every ``bbox_embed.{i}`` and
    ``transformer.decoder.bbox_embed.{i}`` listing must equal ``bbox_embed.0``."""
    for key, value in official.items():
        m = _BOX_MLP.match(key)
        if not m:
            continue
        ref_key = f"bbox_embed.0.{m['rest']}"
        ref = official.get(ref_key)
        if ref is None or not same_tensor(ref, value):
            raise CheckpointConversionError(
                f'{source}: {key!r} differs from {ref_key!r}; the official model shares one '
                'box MLP across decoder layers, so per-layer box MLPs (mmrvos '
                'bbox_head.reg_branches.0..L-1) cannot be represented in that layout')


def _num_decoder_layers(state: Dict[str, Tensor], official: bool) -> int:
    pat = re.compile(
        r'^transformer\.decoder\.layers\.(\d+)\.' if official else r'^decoder\.layers\.(\d+)\.')
    ids = {int(m.group(1)) for m in map(pat.match, state) if m}
    if not ids:
        raise CheckpointConversionError('no decoder layers found in the checkpoint')
    return max(ids) + 1


def official_to_mmrvos(state: Dict[str, Tensor],
                       lora: str = 'keep',
                       lora_alpha: float = 1.0,
                       lora_merged_in_weights: bool = False,
                       lora_wrapped: Optional[Iterable[str]] = None,
                       skip_unknown: bool = False,
                       source: str = '<state dict>') -> Tuple[Dict[str, Tensor], ConversionReport]:
    """Convert an official Grounding DINO or ReferDINO state dict to mmrvos names.

    Args:
        state (dict): official keys (``module.`` prefix already stripped).
        lora (str): ``'keep'`` (peft layout, for a config with ``lora``) or ``'merge'``
            (plain Linear weights, for a config with ``lora=None``).
        lora_alpha (float): loralib alpha (scaling = alpha / rank); the official code uses 1.
        lora_merged_in_weights (bool): the file was saved after ``model.eval()`` (loralib had
            already added ``B@A*scaling`` to ``weight``). The official trainer saves in train
            mode, i.e. unmerged, which is the default.
        lora_wrapped (iterable[str], optional): with ``lora='keep'``, every Linear layer the
            target model wraps with LoRA (see :func:`lora_rule_modules`); layers without LoRA
            tensors in the source (a Grounding DINO checkpoint) get ``base_layer`` names and
            keep the model's fresh adapters. Defaults to the layers with LoRA in the source.
        skip_unknown (bool): drop (and report) keys no rule knows instead of failing.
        source (str): name of the input for messages.

    Returns:
        tuple: (mmrvos state dict, :class:`ConversionReport`).
    """
    if lora not in ('keep', 'merge'):
        raise ValueError(f"lora must be 'keep' or 'merge', got {lora!r}")
    report = ConversionReport(source=source)
    rules = official_rules(num_decoder_layers=_num_decoder_layers(state, True))
    check_shared_box_mlp(state, source)
    out: Dict[str, Tensor] = OrderedDict()
    origin: Dict[str, str] = {}
    for key, value in state.items():
        why = match_dropped(key, DROPPED_OFFICIAL)
        if why:
            report.dropped[key] = why
            continue
        new, rule = rename_official(key, rules)
        if new is None:
            report.unmatched.append(key)
            continue
        if rule.to_ours is not None:
            value = rule.to_ours(value)
        if new in out:
            if not same_tensor(out[new], value):
                raise CheckpointConversionError(
                    f'{source}: {key!r} and {origin[new]!r} are listings of one shared module '
                    f'(both map to {new!r}) but hold different tensors')
            report.duplicates.setdefault(new, [origin[new]]).append(key)
            continue
        out[new] = value
        origin[new] = key
    if report.unmatched and not skip_unknown:
        raise CheckpointConversionError(
            f'{source}: {len(report.unmatched)} keys match no conversion rule:'
            f'{_listing(report.unmatched)}\n(pass skip_unknown / --skip-unknown to drop them)')
    for key in report.unmatched:
        report.dropped[key] = 'unknown key, dropped on request'
    has_lora = bool(loralib_modules(out))
    if has_lora and lora_merged_in_weights and lora == 'keep':
        out = unmerge_loralib(out, lora_alpha)
    if lora == 'keep' and (has_lora or lora_wrapped):
        wrapped = None if lora_wrapped is None else list(lora_wrapped)
        absent = [w for w in wrapped or () if f'{w}.weight' not in out]
        if absent:
            raise CheckpointConversionError(
                f'{source}: Linear layers the target wraps with LoRA are not in the '
                f'checkpoint:{_listing(absent)}')
        n_src = len(loralib_modules(out))
        out = loralib_to_peft(out, wrapped)
        report.lora = f'kept: {n_src} layers with LoRA tensors' + (
            f', {len(wrapped) - n_src} more wrapped with fresh adapters' if wrapped else '')
    elif not has_lora:
        report.lora = 'none'
    else:
        n = len(loralib_modules(out))
        out = merge_loralib(out, lora_alpha, already_merged=lora_merged_in_weights)
        report.lora = f'merged into {n} Linear weights (alpha {lora_alpha})'
    report.converted = len(out)
    return out, report


# ------------------------------------------------------------------ mmdet Grounding DINO
def mmdet_gdino_to_referdino(
        state: Dict[str, Tensor],
        lora_wrapped: Iterable[str] = (),
        source: str = '<state dict>') -> Tuple[Dict[str, Tensor], ConversionReport]:
    """mmdet-layout Grounding DINO (converted release or mmdet-trained) -> ReferDINO init.

    Args:
        state (dict): mmdet keys (``bbox_head.reg_branches.*``, ``encoder.*`` ...).
        lora_wrapped (iterable[str]): Linear layers the target ReferDINO wraps with LoRA
            (their ``weight``/``bias`` become ``base_layer.weight``/``base_layer.bias``).
    """
    report = ConversionReport(source=source)
    out: Dict[str, Tensor] = OrderedDict()
    for key, value in state.items():
        why = match_dropped(key, DROPPED_MMDET)
        if why:
            report.dropped[key] = why
        else:
            out[key] = value
    if peft_modules(out) or loralib_modules(out):
        raise CheckpointConversionError(f'{source}: already holds LoRA tensors; convert it as '
                                        'an mmrvos training checkpoint instead')
    wrapped = list(lora_wrapped)
    missing = [w for w in wrapped if f'{w}.weight' not in out]
    if missing:
        raise CheckpointConversionError(f'{source}: Linear layers to wrap with LoRA are not '
                                        f'in the checkpoint:{_listing(missing)}')
    out = loralib_to_peft(out, wrapped)
    report.lora = f'{len(wrapped)} Linear layers renamed to base_layer (adapters from init)'
    report.converted = len(out)
    return out, report


# ------------------------------------------------------------------ mmrvos -> official
def mmrvos_to_official(state: Dict[str, Tensor],
                       lora_alpha: float = 1.0) -> Tuple[Dict[str, Tensor], ConversionReport]:
    """mmrvos state dict -> the official ReferDINO layout (loralib LoRA, unmerged).

    Shared official modules are written once per listing. The official model shares one box
    MLP across the decoder layers (``dec_pred_bbox_embed_share=True``), so
    ``bbox_head.reg_branches.0..L-1`` must be identical.

    Raises:
        CheckpointConversionError: a key has no official counterpart, or per-layer tensors
            differ where the official model shares one module.
    """
    report = ConversionReport(source='<mmrvos state dict>')
    plain = peft_to_loralib(state)
    rules = official_rules(num_decoder_layers=_num_decoder_layers(state, False))
    out: Dict[str, Tensor] = OrderedDict()
    origin: Dict[str, str] = {}
    for key, value in plain.items():
        names = rename_ours(key, rules)
        if not names:
            report.unmatched.append(key)
            continue
        for name, rule in names:
            new_value = rule.to_official(value) if rule.to_official is not None else value
            if name in out:
                if not same_tensor(out[name], new_value):
                    raise CheckpointConversionError(
                        f'{key!r} and {origin[name]!r} both map to the official {name!r} '
                        '(one shared module there) but differ; the official layout cannot '
                        'represent per-layer box MLPs')
                continue
            out[name] = new_value
            origin[name] = key
    if report.unmatched:
        raise CheckpointConversionError(
            f'{len(report.unmatched)} mmrvos keys have no official counterpart:'
            f'{_listing(report.unmatched)}')
    check_shared_box_mlp(out, '<mmrvos state dict>')
    report.lora = f'{len(loralib_modules(out))} loralib layers (unmerged)' \
        if loralib_modules(out) else 'none'
    report.converted = len(out)
    report.notes.append('BERT pooler (bert.pooler.dense.*) is not part of mmrvos and is not '
                        'written')
    return out, report


# ------------------------------------------------------------------ checking
def check_against(
    state: Dict[str, Tensor],
    model_state: Dict[str, Tensor],
    report: Optional[ConversionReport] = None,
    allowed_missing: Sequence[str] = ()) -> ConversionReport:
    """Compare a converted state dict with a model's ``state_dict()``.

    Args:
        state (dict): converted keys. model_state (dict): the target model's state dict.
        report (ConversionReport, optional): filled in place (a new one otherwise).
        allowed_missing (list[str]): regexes of model keys the model initialises itself
            (e.g. :data:`REFERDINO_NEW_MODULES` for a Grounding DINO initialisation).

    Raises:
        CheckpointConversionError: missing keys outside ``allowed_missing``, unexpected keys
            or shape mismatches.
    """
    report = report or ConversionReport()
    patterns = [re.compile(p) for p in allowed_missing]
    missing = [k for k in model_state if k not in state]
    report.allowed_missing = [k for k in missing if any(p.search(k) for p in patterns)]
    report.missing = [k for k in missing if k not in set(report.allowed_missing)]
    report.unexpected = [k for k in state if k not in model_state]
    shapes = [
        f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(model_state[k].shape)}'
        for k, v in state.items() if k in model_state and v.shape != model_state[k].shape
    ]
    if report.missing or report.unexpected or shapes:
        msg = [f'{report.source} does not match the model:']
        if report.missing:
            msg.append(f'{len(report.missing)} model keys would stay uninitialised:'
                       f'{_listing(report.missing)}')
        if report.unexpected:
            msg.append(f'{len(report.unexpected)} unexpected keys:{_listing(report.unexpected)}')
        if shapes:
            msg.append(f'{len(shapes)} shape mismatches:{_listing(shapes)}')
        raise CheckpointConversionError('\n'.join(msg))
    return report


def lora_settings(model_cfg) -> Optional[dict]:
    """``model.lora`` of a config as a dict with defaults (None without LoRA)."""
    lora = model_cfg.get('lora')
    if not lora:
        return None
    return dict(
        targets=tuple(lora.get('targets', ('encoder', 'decoder'))),
        rank=int(lora.get('rank', 32)),
        alpha=float(lora.get('alpha', 1.0)),
        exclude=tuple(lora.get('exclude', ('out_proj', 'bbox_embed', 'reg_branches'))))


def to_float_tensor_dict(state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Detached, contiguous CPU copies (safe to save)."""
    return OrderedDict((k, v.detach().cpu().contiguous()) for k, v in state.items())


__all__ = [
    'CheckpointConversionError', 'ConversionReport', 'REFERDINO_NEW_MODULES', 'check_against',
    'detect_layout', 'extract_state_dict', 'load_state_dict_file', 'lora_settings',
    'mmdet_gdino_to_referdino', 'mmrvos_to_official', 'official_to_mmrvos', 'to_float_tensor_dict'
]

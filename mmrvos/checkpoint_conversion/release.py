"""Release helpers: LoRA-merged plain weights and OpenMMLab model-index (metafile) entries.

A training checkpoint (mmengine: ``meta``, ``state_dict``, ``optimizer``,
``param_schedulers``, ``message_hub``) of a LoRA config holds peft keys
(``X.base_layer.weight``, ``X.lora_A.default.weight`` ...). The release keeps only the
merged ``state_dict`` (``X.weight = W + alpha / r * B @ A``), loadable into the same config
with ``lora=None``, plus a small ``meta``.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from torch import Tensor

from .ckpt_convert import CheckpointConversionError, extract_state_dict, to_float_tensor_dict
from .lora_convert import merge_peft, peft_modules

#: ``meta`` entries kept in a release (the rest, e.g. paths of the training machine, is dropped).
RELEASE_META_KEYS = ('mmengine_version', 'mmdet_version', 'mmrvos_version', 'dataset_meta', 'epoch',
                     'iter', 'seed', 'experiment_name')
TASK = 'Referring Video Object Segmentation'


def merge_training_state(checkpoint: dict,
                         lora_alpha: float = 1.0,
                         source: str = '<checkpoint>') -> Tuple[Dict[str, Tensor], int]:
    """Merged plain state dict of a training checkpoint and the number of merged layers.

    Raises:
        CheckpointConversionError: incomplete LoRA pairs or no state dict.
    """
    state = extract_state_dict(checkpoint, source)
    num = len(peft_modules(state))
    try:
        merged = merge_peft(state, alpha=lora_alpha)
    except (KeyError, ValueError) as err:
        raise CheckpointConversionError(f'{source}: {err}') from err
    leftovers = [k for k in merged if '.lora_' in k or '.base_layer.' in k]
    if leftovers:
        raise CheckpointConversionError(f'{source}: LoRA keys left after merging: {leftovers[:5]}')
    return to_float_tensor_dict(merged), num


def release_checkpoint(checkpoint: dict,
                       lora_alpha: float = 1.0,
                       source: str = '<checkpoint>') -> Tuple[dict, List[str]]:
    """``{'meta', 'state_dict'}`` release dict and the names of the dropped top-level entries
    (optimizer state, schedulers, message hub ...)."""
    merged, num = merge_training_state(checkpoint, lora_alpha, source)
    meta = {k: v for k, v in (checkpoint.get('meta') or {}).items() if k in RELEASE_META_KEYS}
    meta['lora_merged_layers'] = num
    dropped = sorted(k for k in checkpoint if k not in ('meta', 'state_dict'))
    return dict(meta=meta, state_dict=merged), dropped


def parse_metrics(items: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """``['Ref-YouTube-VOS:J&F=67.5', 'Ref-YouTube-VOS:J=65.5']`` ->
    ``{'Ref-YouTube-VOS': {'J&F': 67.5, 'J': 65.5}}``."""
    out: Dict[str, Dict[str, float]] = {}
    for item in items:
        try:
            dataset, rest = item.split(':', 1)
            name, value = rest.rsplit('=', 1)
            out.setdefault(dataset.strip(), {})[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f'metric {item!r} is not DATASET:NAME=VALUE') from None
    return out


def metafile_entry(name: str,
                   config: str,
                   weights: str,
                   metrics: Dict[str, Dict[str, float]],
                   collection: str = 'ReferDINO',
                   metadata: Optional[dict] = None) -> dict:
    """One ``Models`` entry of an OpenMMLab metafile."""
    entry = {'Name': name, 'In Collection': collection, 'Config': config}
    if metadata:
        entry['Metadata'] = dict(metadata)
    entry['Results'] = [{
        'Task': TASK,
        'Dataset': ds,
        'Metrics': dict(m)
    } for ds, m in metrics.items()]
    entry['Weights'] = weights
    return entry


def update_metafile(path: str,
                    entry: dict,
                    overwrite: bool = False,
                    collection: Optional[dict] = None) -> dict:
    """Add ``entry`` to the metafile at ``path`` (created if absent) and write it.

    Raises:
        FileExistsError: an entry with the same ``Name`` exists and ``overwrite`` is False.
    """
    import yaml
    data = {}
    if osp.exists(path):
        with open(path) as f:
            data = yaml.safe_load(f) or {}
        if not isinstance(data, dict):
            raise ValueError(f'{path}: not a model-index metafile (top level is not a mapping)')
    if collection and not data.get('Collections'):
        data['Collections'] = [collection]
    models = data.setdefault('Models', [])
    same = [i for i, m in enumerate(models) if m.get('Name') == entry['Name']]
    if same and not overwrite:
        raise FileExistsError(f"{path}: an entry named {entry['Name']!r} exists; pass "
                              '--overwrite to replace it')
    if same:
        models[same[0]] = entry
    else:
        models.append(entry)
    with open(path, 'w') as f:
        yaml.safe_dump(data, f, sort_keys=False, allow_unicode=True)
    return data

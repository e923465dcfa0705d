"""Convert official MPG-SAM 2 weights to mmrvos' ``MPGSAM2``.

Sources (the layout is detected from the keys):

* the official release (``huggingface.co/ReeF2025/MPG-SAM2``): the downloaded folder
  (``model.safetensors`` / ``pytorch_model.bin``, sharded or not) or one weight file, keys of
  the official ``EvfSamModel`` (``visual_model.*`` = Meta SAM 2, ``mm_extractor.beit3.*`` =
  BEiT-3, plus the MPG modules), optionally under ``module.evf_model.``;
* the public initialisations for training: Meta's ``sam2_hiera_large.pt`` and Microsoft's
  ``beit3_large_patch16_224.pth`` (give both: each fills its part; the new MPG modules stay
  to the model's own initialisation).

Torch files are read with ``weights_only=True`` (no pickled code runs). With ``--config`` the
result is checked against the config's model (built on the meta device: no memory): for a
release every key must match (strict); for initialisations, unexpected keys and shape
mismatches are errors and the keys left to the model are listed.

Example::

    python projects/MPG-SAM2/tools/mpg_sam2_to_mmrvos.py checkpoints/MPG-SAM2 \\
        checkpoints/mpg_sam2_mmrvos.pth \\
        --config projects/MPG-SAM2/configs/mpg_sam2_beit3-l_sam2-hiera-l_8xb1-6e_ref-ytvos.py
"""
import argparse
import os.path as osp
import sys
from collections import OrderedDict

PROJECT = osp.dirname(osp.dirname(osp.abspath(__file__)))
REPO_ROOT = osp.dirname(osp.dirname(PROJECT))
for path in (REPO_ROOT, osp.join(REPO_ROOT, 'tools', 'model_converters')):
    if path not in sys.path:
        sys.path.insert(0, path)

from _common import refuse_overwrite, run_cli, save_checkpoint  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'src', nargs='+', help='release folder or file; or a SAM 2 file and a BEiT-3 file')
    parser.add_argument('dst', help='output checkpoint (mmengine format)')
    parser.add_argument('--config', help='check the result against this model config')
    parser.add_argument('--overwrite', action='store_true')
    return parser.parse_args(argv)


def convert(sources):
    """Converted state dict and the detected kind of each source."""
    import importlib
    ckpt = importlib.import_module('projects.MPG-SAM2.mpg_sam2.checkpoint')
    from mmrvos.checkpoint_conversion import CheckpointConversionError
    state, kinds = OrderedDict(), []
    for src in sources:
        part, kind = ckpt.convert_any(ckpt.load_release(src))
        overlap = sorted(set(part) & set(state))
        if overlap:
            raise CheckpointConversionError(
                f'{src} ({kind}) overlaps the earlier sources on {len(overlap)} key(s), e.g. '
                f'{overlap[:3]}')
        state.update(part)
        kinds.append(kind)
    return state, kinds


def check(state, kinds, config):
    """Compare with the config's model; returns the keys left to the model."""
    import importlib

    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmrvos  # noqa: F401
    from mmrvos.apis.config import add_projects_root
    from mmrvos.checkpoint_conversion import check_against
    add_projects_root(config)
    ckpt = importlib.import_module('projects.MPG-SAM2.mpg_sam2.checkpoint')
    init_default_scope('mmdet')
    cfg = Config.fromfile(config)
    model_state = ckpt.build_on_meta(cfg.model).state_dict()
    full = kinds == ['mpg_sam2'] or kinds == ['mmrvos']
    report = check_against(state, model_state, allowed_missing=() if full else ('.*', ))
    return report.allowed_missing


def main(argv=None):
    args = parse_args(argv)
    refuse_overwrite(args.dst, args.overwrite)
    state, kinds = convert(args.src)
    left = check(state, kinds, args.config) if args.config else None
    save_checkpoint(
        dict(
            state_dict=OrderedDict(
                (k, v.float() if v.is_floating_point() else v) for k, v in state.items()),
            meta=dict(converted_from=[osp.abspath(s) for s in args.src], kinds=kinds)), args.dst,
        args.overwrite)
    print(f'converted {", ".join(kinds)}: {len(state)} keys, '
          f'{sum(v.numel() for v in state.values()):,} values')
    if left is None:
        print('not checked against a model (pass --config to check)')
    elif left:
        prefixes = sorted({k.split('.')[0] for k in left})
        print(f'{len(left)} model keys left to the model\'s initialisation (in {prefixes})')
    else:
        print('matches the model: every key and shape')
    print(f'saved {args.dst}')


if __name__ == '__main__':
    run_cli(main)

"""Merge the LoRA adapters of a training checkpoint into plain Linear weights.

The result has plain key names (``X.weight = W + alpha / r * B @ A``, ``X.bias``), no LoRA
tensors and no optimizer state, and loads (strictly) into the same config with ``lora=None``.
The alpha comes from ``--config`` (``model.lora.alpha``) or ``--lora-alpha``.

Example::

    python tools/model_converters/merge_lora.py work_dirs/x/epoch_2.pth merged.pth \\
        --config configs/referdino/referdino_swin-t_8xb1-2e_ref-ytvos.py
"""
import argparse

from _common import refuse_overwrite, run_cli, save_checkpoint

from mmrvos.checkpoint_conversion.release import merge_training_state
from mmrvos.engine.checkpoint import load_checkpoint_file


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='training checkpoint')
    parser.add_argument('dst', help='output checkpoint')
    parser.add_argument('--config', help='training config (for model.lora.alpha)')
    parser.add_argument('--lora-alpha', type=float, help='overrides the config (default 1)')
    parser.add_argument('--overwrite', action='store_true')
    return parser.parse_args(argv)


def lora_alpha_of(config, override):
    """alpha from ``--lora-alpha``, else the config's ``model.lora.alpha``, else 1."""
    if override is not None:
        return override
    if config:
        from mmengine.config import Config
        lora = Config.fromfile(config).model.get('lora')
        if lora:
            return float(lora.get('alpha', 1.0))
    return 1.0


def main(argv=None):
    args = parse_args(argv)
    refuse_overwrite(args.dst, args.overwrite)
    alpha = lora_alpha_of(args.config, args.lora_alpha)
    ckpt = load_checkpoint_file(args.src, map_location='cpu')
    merged, num = merge_training_state(ckpt, alpha, args.src)
    meta = dict(ckpt.get('meta') or {}) if isinstance(ckpt, dict) else {}
    meta.update(lora_merged_layers=num, lora_alpha=alpha)
    save_checkpoint(dict(meta=meta, state_dict=merged), args.dst, args.overwrite)
    print(f'merged {num} LoRA layers (alpha {alpha}); {len(merged)} keys saved to {args.dst}')


if __name__ == '__main__':
    run_cli(main)

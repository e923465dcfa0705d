"""Convert an official ReferDINO release checkpoint (or an official Grounding DINO one) to
mmrvos.

Official ReferDINO files keep Grounding DINO's key names and loralib LoRA tensors
(``X.lora_A`` (r, in), ``X.lora_B`` (out, r), scaling 1/32). ``--lora keep`` writes them in
mmrvos' peft layout (config with ``lora=...``); ``--lora merge`` adds ``B@A/32`` into each
weight (config with ``lora=None``). With ``--config`` the result is checked against the
model: a key the model would leave uninitialised, an unexpected key or a shape mismatch is an
error.

Example::

    python tools/model_converters/referdino_to_mmrvos.py ryvos_swint.pth \\
        referdino_swin-t_ryvos_mmrvos.pth \\
        --config configs/referdino/referdino_swin-t_8xb1-2e_ref-ytvos.py
"""
import argparse

from _common import model_state_from_config, refuse_overwrite, run_cli, save_checkpoint

from mmrvos.checkpoint_conversion import (REFERDINO_NEW_MODULES, check_against, detect_layout,
                                          load_state_dict_file, official_to_mmrvos,
                                          to_float_tensor_dict)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint (mmengine format)')
    parser.add_argument('--lora', choices=['keep', 'merge'], default='keep')
    parser.add_argument(
        '--lora-alpha',
        type=float,
        default=1.0,
        help='loralib alpha (scaling = alpha / rank); the official code uses 1')
    parser.add_argument(
        '--merged-in-weights',
        action='store_true',
        help='the file was saved after model.eval() (loralib merged B@A into '
        'weight already); the official trainer saves unmerged files')
    parser.add_argument('--config', help='check the result against this model config')
    parser.add_argument(
        '--gdino-init',
        action='store_true',
        help='the source is a Grounding DINO checkpoint: ReferDINO modules and '
        'LoRA adapters may be absent (the model initialises them)')
    parser.add_argument(
        '--skip-unknown',
        action='store_true',
        help='drop keys that match no rule (reported) instead of failing')
    parser.add_argument('--overwrite', action='store_true')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    refuse_overwrite(args.dst, args.overwrite)
    state = load_state_dict_file(args.src)
    if detect_layout(state) != 'official':
        raise SystemExit(f'error: {args.src} is not in the official layout (already mmdet '
                         'names?); use groundingdino_to_referdino.py for mmdet files')
    model_state, wrapped = None, None
    if args.config:
        from mmrvos.checkpoint_conversion import peft_modules
        model_state, _ = model_state_from_config(args.config)
        wrapped = peft_modules(model_state) if args.lora == 'keep' else None
    converted, report = official_to_mmrvos(
        state,
        lora=args.lora,
        lora_alpha=args.lora_alpha,
        lora_merged_in_weights=args.merged_in_weights,
        lora_wrapped=wrapped,
        skip_unknown=args.skip_unknown,
        source=args.src)
    if model_state is not None:
        check_against(converted, model_state, report, REFERDINO_NEW_MODULES if args.gdino_init else
                      ())
    else:
        report.notes.append('not checked against a model (pass --config to check)')
    save_checkpoint(
        dict(
            state_dict=to_float_tensor_dict(converted),
            meta=dict(converted_from=args.src, lora=report.lora)), args.dst, args.overwrite)
    print(report.format())
    print(f'saved {args.dst}')


if __name__ == '__main__':
    run_cli(main)

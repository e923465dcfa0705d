"""Grounding DINO checkpoint -> ReferDINO initialisation (``load_from``).

Accepts the official release (``groundingdino_swint_ogc.pth``: ``module.`` prefix, original
names) or mmdet's converted / mmdet-trained Grounding DINO. The LoRA-wrapped Linear layers of
the target config are renamed to peft's ``base_layer``; ReferDINO's new modules (pixel
decoder, mask decoder, temporal enhancer) and the LoRA adapters are not in the file and are
initialised by the model. ``--check`` builds the model and fails on anything else missing.

Example::

    python tools/model_converters/groundingdino_to_referdino.py groundingdino_swint_ogc.pth \\
        gdino_swin-t_referdino-init.pth --config configs/_base_/models/referdino_swin-t.py
"""
import argparse

from _common import model_state_from_config, refuse_overwrite, run_cli, save_checkpoint

from mmrvos.checkpoint_conversion import (REFERDINO_NEW_MODULES, check_against, detect_layout,
                                          load_state_dict_file, lora_rule_modules, lora_settings,
                                          mmdet_gdino_to_referdino, official_to_mmrvos,
                                          to_float_tensor_dict)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='Grounding DINO checkpoint (official or mmdet)')
    parser.add_argument('dst', help='output checkpoint for load_from')
    parser.add_argument(
        '--config', required=True, help='ReferDINO config (its model.lora decides the renaming)')
    parser.add_argument(
        '--check',
        action='store_true',
        help='build the model and check the keys (needs its BERT locally)')
    parser.add_argument('--skip-unknown', action='store_true')
    parser.add_argument('--overwrite', action='store_true')
    return parser.parse_args(argv)


def convert(state, model_cfg, source, skip_unknown=False):
    """Grounding DINO state dict (either layout) -> (ReferDINO init dict, report)."""
    lora = lora_settings(model_cfg)
    if detect_layout(state) == 'official':
        plain, report = official_to_mmrvos(
            state, lora='merge', skip_unknown=skip_unknown, source=source)
    else:
        plain, report = mmdet_gdino_to_referdino(state, source=source)
    if lora is None:
        return plain, report
    wrapped = lora_rule_modules(plain, lora['targets'], lora['exclude'])
    out, report2 = mmdet_gdino_to_referdino(plain, wrapped, source=source)
    report.dropped.update(report2.dropped)
    report.lora = report2.lora
    report.converted = len(out)
    return out, report


def main(argv=None):
    args = parse_args(argv)
    refuse_overwrite(args.dst, args.overwrite)
    from mmengine.config import Config
    cfg = Config.fromfile(args.config)
    converted, report = convert(
        load_state_dict_file(args.src), cfg.model, args.src, args.skip_unknown)
    if args.check:
        model_state, _ = model_state_from_config(args.config)
        check_against(converted, model_state, report, REFERDINO_NEW_MODULES)
    save_checkpoint(
        dict(
            state_dict=to_float_tensor_dict(converted),
            meta=dict(converted_from=args.src, lora=report.lora)), args.dst, args.overwrite)
    print(report.format())
    print(f'saved {args.dst}')


if __name__ == '__main__':
    run_cli(main)

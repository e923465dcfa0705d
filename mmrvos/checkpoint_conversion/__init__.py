"""Checkpoint conversion: official Grounding DINO / ReferDINO <-> mmrvos key layouts
(:mod:`.key_rules`, :mod:`.ckpt_convert`), LoRA layouts and merging (:mod:`.lora_convert`)
and release helpers (:mod:`.release`), used by ``tools/model_converters/``."""
from .ckpt_convert import (REFERDINO_NEW_MODULES, CheckpointConversionError, ConversionReport,
                           check_against, detect_layout, extract_state_dict, load_state_dict_file,
                           lora_settings, mmdet_gdino_to_referdino, mmrvos_to_official,
                           official_to_mmrvos, to_float_tensor_dict)
from .lora_convert import (lora_rule_modules, loralib_to_peft, merge_loralib, merge_peft,
                           peft_modules, peft_to_loralib)

__all__ = [
    'REFERDINO_NEW_MODULES', 'CheckpointConversionError', 'ConversionReport', 'check_against',
    'detect_layout', 'extract_state_dict', 'load_state_dict_file', 'lora_settings',
    'mmdet_gdino_to_referdino', 'mmrvos_to_official', 'official_to_mmrvos', 'to_float_tensor_dict',
    'lora_rule_modules', 'loralib_to_peft', 'merge_loralib', 'merge_peft', 'peft_modules',
    'peft_to_loralib'
]

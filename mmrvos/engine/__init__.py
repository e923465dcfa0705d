"""Training-loop helpers registered in mmdet's registries: hooks, the Runner, and checkpoint
loading that never runs code from a file (:mod:`mmrvos.engine.checkpoint`)."""
from .checkpoint import (UnsafeCheckpointError, load_checkpoint_file, safe_checkpoint_loaders,
                         safe_load_checkpoint)
from .hooks import ParameterTableHook, RNGStateHook, RVOSVisualizationHook
from .runner import RVOSRunner

__all__ = [
    'ParameterTableHook', 'RNGStateHook', 'RVOSRunner', 'RVOSVisualizationHook',
    'UnsafeCheckpointError', 'load_checkpoint_file', 'safe_checkpoint_loaders',
    'safe_load_checkpoint'
]

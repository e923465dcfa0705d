"""Hooks of mmrvos (registered in mmdet's ``HOOKS``)."""
from .rvos_visualization_hook import RVOSVisualizationHook
from .training_hooks import ParameterTableHook, RNGStateHook

__all__ = ['ParameterTableHook', 'RNGStateHook', 'RVOSVisualizationHook']

"""Training-loop helpers (hooks) registered in mmdet's HOOKS."""
from .hooks import ParameterTableHook, RNGStateHook

__all__ = ['ParameterTableHook', 'RNGStateHook']

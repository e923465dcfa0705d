"""Training-loop helpers (hooks) registered in mmdet's HOOKS."""
from .hooks import ParameterTableHook

__all__ = ['ParameterTableHook']

"""mmrvos: Referring Video Object Segmentation for MMDetection.

``import mmrvos`` applies the stack fixes of :mod:`mmrvos.compat` and registers every module of
the package into mmdet's registries (``MODELS``, ``DATASETS``, ``TRANSFORMS``, ``METRICS``,
``TASK_UTILS``, ``HOOKS``, ``VISUALIZERS``), so that an mmdet config can use them through
``custom_imports=dict(imports=['mmrvos'], allow_failed_imports=False)``.
"""
from . import compat
from .version import __version__

compat.apply()

from . import datasets, engine, evaluation, models, visualization  # noqa: E402,F401

__all__ = ['__version__', 'compat', 'datasets', 'engine', 'evaluation', 'models', 'visualization']

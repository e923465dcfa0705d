"""mmrvos.evaluation.metrics: mmdet ``BaseVideoMetric`` subclasses (registered)."""
from .a2d_metric import A2DMetric
from .rvos_metric import RVOSMetric

__all__ = ['A2DMetric', 'RVOSMetric']

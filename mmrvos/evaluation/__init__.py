"""mmrvos.evaluation: DAVIS J&F, A2D mAP / IoU, metrics and result writers."""
from . import functional, writers  # noqa: F401
from .metrics import A2DMetric, RVOSMetric
from .writers import RVOSResultWriter, make_submission_zip

__all__ = [
    'functional', 'writers', 'A2DMetric', 'RVOSMetric', 'RVOSResultWriter', 'make_submission_zip'
]

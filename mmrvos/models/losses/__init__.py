"""Losses of mmrvos (the others are reused from mmdet)."""
from .projection_loss import ProjectionLoss, max_projections

__all__ = ['ProjectionLoss', 'max_projections']

from .sequence_hungarian_assigner import ProjectionDiceCost, SequenceHungarianAssigner

__all__ = ['ProjectionDiceCost', 'SequenceHungarianAssigner']

from .pruned_grounding_dino import PrunedGroundingDINO, PrunedGroundingDINOHead
from .referdino import ReferDINO

__all__ = ['ReferDINO', 'PrunedGroundingDINO', 'PrunedGroundingDINOHead']

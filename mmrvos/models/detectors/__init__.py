from .base_rvos import BaseRVOSDetector
from .per_frame_grounding_dino import PerFrameGroundingDINO
from .pruned_grounding_dino import PrunedGroundingDINO, PrunedGroundingDINOHead
from .referdino import ReferDINO

__all__ = [
    'BaseRVOSDetector', 'PerFrameGroundingDINO', 'ReferDINO', 'PrunedGroundingDINO',
    'PrunedGroundingDINOHead'
]

from .base_rvos_head import BaseRVOSHead
from .dynamic_mask_head import DynamicMaskHead, StaticMaskHead
from .mask_decoder import GroundingMaskDecoder
from .referdino_head import ReferDINOHead

__all__ = [
    'BaseRVOSHead', 'DynamicMaskHead', 'GroundingMaskDecoder', 'ReferDINOHead', 'StaticMaskHead'
]

from .mask_decoder import GroundingMaskDecoder
from .referdino_head import ReferDINOHead

__all__ = ['GroundingMaskDecoder', 'ReferDINOHead']

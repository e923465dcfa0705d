"""MPG-SAM 2 as an mmdet project: ``custom_imports=dict(imports=['mmrvos',
'projects.MPG-SAM2.mpg_sam2'])`` registers its modules into mmdet's MODELS."""
from .aggregator import FusionLayer, GlobalHistoricalAggregator
from .beit3 import BEiT3
from .head import MPGSAM2Head
from .losses import MaskTextSimilarityLoss
from .mask_prior_generator import MaskPriorGenerator
from .mpg_sam2 import MPGSAM2
from .sam2_tracker import MPGSam2MaskDecoder, MPGSam2Tracker

__all__ = [
    'BEiT3', 'FusionLayer', 'GlobalHistoricalAggregator', 'MPGSAM2', 'MPGSAM2Head',
    'MPGSam2MaskDecoder', 'MPGSam2Tracker', 'MaskPriorGenerator', 'MaskTextSimilarityLoss'
]

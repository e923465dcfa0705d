"""ReferFormer as an mmdet project: ``custom_imports=dict(imports=['mmrvos',
'projects.ReferFormer.referformer'])`` registers its modules into mmdet's MODELS."""
from .cm_fpn import CrossModalFPN
from .fusion import VisionLanguageBlock, VisionLanguageFusion
from .head import ReferFormerHead
from .referformer import ReferFormer
from .text_encoder import RobertaTextEncoder, sine_positions_1d

__all__ = [
    'CrossModalFPN', 'ReferFormer', 'ReferFormerHead', 'RobertaTextEncoder', 'VisionLanguageBlock',
    'VisionLanguageFusion', 'sine_positions_1d'
]

from .decoder_layer import SwitchableGroundingDecoderLayer
from .folded_vl_attention import FoldedBiMultiHeadAttention, use_folded_vl_attention
from .msda import (CPUFastMultiScaleDeformableAttention, multi_scale_deformable_attn_cpu,
                   use_cpu_fast_msda)
from .pruning_decoder import PruningGroundingDinoDecoder, num_kept_queries, pruning_confidence
from .temporal import CrossModalTemporalDecoder, MemoryTracker, TemporalBlock, TemporalEnhancer

__all__ = [
    'SwitchableGroundingDecoderLayer', 'PruningGroundingDinoDecoder', 'num_kept_queries',
    'pruning_confidence', 'CrossModalTemporalDecoder', 'MemoryTracker', 'TemporalBlock',
    'TemporalEnhancer', 'CPUFastMultiScaleDeformableAttention', 'multi_scale_deformable_attn_cpu',
    'use_cpu_fast_msda', 'FoldedBiMultiHeadAttention', 'use_folded_vl_attention'
]

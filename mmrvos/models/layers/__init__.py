from .decoder_layer import SwitchableGroundingDecoderLayer
from .pruning_decoder import (PruningGroundingDinoDecoder, num_kept_queries,
                              pruning_confidence)
from .temporal import (CrossModalTemporalDecoder, MemoryTracker, TemporalBlock,
                       TemporalEnhancer)

__all__ = [
    'SwitchableGroundingDecoderLayer', 'PruningGroundingDinoDecoder', 'num_kept_queries',
    'pruning_confidence', 'CrossModalTemporalDecoder', 'MemoryTracker', 'TemporalBlock',
    'TemporalEnhancer'
]

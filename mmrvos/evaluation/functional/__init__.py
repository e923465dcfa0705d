"""mmrvos.evaluation.functional: metric math without mmdet (numpy / pycocotools)."""
from .davis import (boundary_f, boundary_map, boundary_radius, disk,
                    region_jaccard)

__all__ = [
    'boundary_f', 'boundary_map', 'boundary_radius', 'disk', 'region_jaccard'
]

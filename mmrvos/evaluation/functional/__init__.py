"""mmrvos.evaluation.functional: metric math without mmdet (numpy / pycocotools)."""
from .a2d import a2d_metrics, coco_mask_ap, encode_masks, precision_and_iou
from .davis import boundary_f, boundary_map, boundary_radius, disk, region_jaccard
from .mask_io import (AnnotationRepairWarning, conform_to_shape, decode_rle, image_size,
                      read_binary_png, read_index_png)
from .meta_io import check_videos, load_json, parse_obj_ids
from .rvos import evaluate_expression, format_rvos_table, summarize_rvos
from .rvos_files import evaluate_prediction_dir
from .rvos_gt import RVOSGroundTruth

__all__ = [
    'a2d_metrics', 'coco_mask_ap', 'encode_masks', 'precision_and_iou', 'boundary_f',
    'boundary_map', 'boundary_radius', 'disk', 'region_jaccard', 'AnnotationRepairWarning',
    'check_videos', 'load_json', 'parse_obj_ids', 'conform_to_shape', 'decode_rle', 'image_size',
    'read_binary_png', 'read_index_png', 'evaluate_expression', 'format_rvos_table',
    'summarize_rvos', 'evaluate_prediction_dir', 'RVOSGroundTruth'
]

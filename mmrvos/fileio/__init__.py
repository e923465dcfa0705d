"""File reading and writing that fails loudly: strict image decoding, output folders that are
replaced only after the new result is complete."""
from .image import check_image_complete, image_size, read_image_strict
from .output_dir import StagedOutputDir, check_output_dir, replace_dir

__all__ = [
    'check_image_complete', 'image_size', 'read_image_strict', 'StagedOutputDir',
    'check_output_dir', 'replace_dir'
]

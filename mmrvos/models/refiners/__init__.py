"""Post-processors that refine a detector's masks through the video."""
from .sam2_video_refiner import SAM2VideoRefiner, build_sam2_video_model

__all__ = ['SAM2VideoRefiner', 'build_sam2_video_model']

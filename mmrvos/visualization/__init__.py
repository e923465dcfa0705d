"""The registered RVOS visualizer (mmengine ``Visualizer`` drawing methods) and the writer of
its drawings as GIF / MP4 videos."""
from .rvos_visualizer import GT_COLOR, PALETTE, RVOSLocalVisualizer
from .video_writer import GIF_MAX_FRAMES, VIDEO_FORMATS, OverlayVideoWriter

__all__ = [
    'RVOSLocalVisualizer', 'PALETTE', 'GT_COLOR', 'OverlayVideoWriter', 'GIF_MAX_FRAMES',
    'VIDEO_FORMATS'
]

"""Overlay rendering (frames + masks -> GIF/MP4) and the registered RVOS visualizer."""
from .overlay import (PALETTE, add_caption, overlay_masks, render_overlay_video,
                      write_video)
from .visualizer import RVOSLocalVisualizer

__all__ = ['PALETTE', 'add_caption', 'overlay_masks', 'render_overlay_video', 'write_video',
           'RVOSLocalVisualizer']

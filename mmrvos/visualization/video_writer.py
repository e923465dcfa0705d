"""Write drawn frames to a video file as they come (nothing holds a whole video).

MP4: each frame goes straight to ``cv2.VideoWriter``. GIF: Pillow writes a GIF in one call, so
frames are kept, but as 1-byte palette images at most ``max_width`` wide, and at most
``gif_max_frames`` of them: a longer video keeps every k-th frame (each shown k times as long,
so the GIF lasts as long as the video). Use MP4 for every frame of a long video.
"""
import math
import os.path as osp
from typing import List, Optional

import cv2
import numpy as np
from PIL import Image

GIF_MAX_FRAMES = 300
VIDEO_FORMATS = ('gif', 'mp4')


class OverlayVideoWriter:
    """Write RGB frames (drawn by :class:`~mmrvos.visualization.RVOSLocalVisualizer`) to
    ``path`` (``.gif`` or ``.mp4``) as they come.

    Args:
        path (str): output file; the extension selects the format.
        num_frames (int): frames that will be added (for the GIF frame step).
        fps (float): frames per second of the input video (> 0).
        max_width (int): frames wider than this are scaled down.
        gif_max_frames (int): most frames a GIF keeps (see the module docstring).
    """

    def __init__(self,
                 path: str,
                 num_frames: int,
                 fps: float = 6.0,
                 max_width: int = 640,
                 gif_max_frames: int = GIF_MAX_FRAMES) -> None:
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise ValueError(f'fps must be a positive number, got {fps}')
        self.ext = osp.splitext(path)[1].lower()
        if self.ext[1:] not in VIDEO_FORMATS:
            raise ValueError(f'{path}: unsupported video format {self.ext!r} (use .gif or .mp4)')
        self.path, self.fps, self.max_width = path, float(fps), max_width
        self.step = max(1, math.ceil(num_frames / gif_max_frames)) if self.ext == '.gif' else 1
        self._gif: List[Image.Image] = []
        self._mp4: Optional[cv2.VideoWriter] = None
        self.count = 0

    def keeps(self, index: int) -> bool:
        """Whether frame ``index`` goes into the file (a long GIF skips frames): the caller
        need not draw the others."""
        return index % self.step == 0

    def _fit(self, rgb: np.ndarray) -> np.ndarray:
        if rgb.shape[1] > self.max_width:
            scale = self.max_width / rgb.shape[1]
            rgb = cv2.resize(
                rgb, (self.max_width, int(round(rgb.shape[0] * scale))),
                interpolation=cv2.INTER_AREA)
        return rgb

    def add(self, rgb: Optional[np.ndarray]) -> None:
        """Add the next frame, (H, W, 3) uint8 RGB (None for a frame :meth:`keeps` skips)."""
        index, self.count = self.count, self.count + 1
        if not self.keeps(index):
            return
        if rgb is None:
            raise ValueError(f'{self.path}: frame {index} is missing')
        img = self._fit(np.ascontiguousarray(rgb))
        if self.ext == '.gif':
            self._gif.append(Image.fromarray(img).convert('P', palette=Image.Palette.ADAPTIVE))
            return
        if self._mp4 is None:
            h, w = img.shape[:2]
            self._mp4 = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*'mp4v'), self.fps,
                                        (w, h))
            if not self._mp4.isOpened():
                raise RuntimeError(f'{self.path}: OpenCV cannot open an mp4 writer here; '
                                   'use gif')
        self._mp4.write(np.ascontiguousarray(img[..., ::-1]))

    def close(self) -> str:
        """Finish the file; returns its path."""
        if self.count == 0:
            raise ValueError(f'{self.path}: no frames to write')
        if self.ext == '.gif':
            self._gif[0].save(
                self.path,
                save_all=True,
                append_images=self._gif[1:],
                duration=int(1000 * self.step / self.fps),
                loop=0)
            self._gif = []
        elif self._mp4 is not None:
            self._mp4.release()
            self._mp4 = None
        return self.path


__all__ = ['OverlayVideoWriter', 'GIF_MAX_FRAMES', 'VIDEO_FORMATS']

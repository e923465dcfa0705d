"""Write an overlay video frame by frame (the demo never holds a whole video).

MP4: each frame goes straight to ``cv2.VideoWriter``. GIF: Pillow writes a GIF in one call, so
frames are kept, but as 1-byte palette images at most ``max_width`` wide, and at most
``gif_max_frames`` of them: a longer video keeps every k-th frame (each shown k times as long,
so the GIF lasts as long as the video). Use MP4 for every frame of a long video.
"""
import math
import os.path as osp
from typing import List, Optional, Sequence

import cv2
import numpy as np
from PIL import Image

from mmrvos.visualization.overlay import add_caption, overlay_masks

GIF_MAX_FRAMES = 300


class OverlayVideoWriter:
    """Render masks over frames and write them to ``path`` (``.gif`` or ``.mp4``) as they come.

    Args:
        path (str): output file; the extension selects the format.
        texts (list[str]): the expressions (one caption line and colour each).
        num_frames (int): frames that will be added (for the GIF frame step).
        fps (float): frames per second of the input video (> 0).
        max_width (int): overlays wider than this are scaled down.
        gif_max_frames (int): most frames a GIF keeps (see the module docstring).
    """

    def __init__(self, path: str, texts: Sequence[str], num_frames: int, fps: float = 6.0,
                 max_width: int = 640, gif_max_frames: int = GIF_MAX_FRAMES) -> None:
        if not fps > 0 or not math.isfinite(fps):
            raise ValueError(f'fps must be a positive number, got {fps}')
        self.ext = osp.splitext(path)[1].lower()
        if self.ext not in ('.gif', '.mp4'):
            raise ValueError(f'{path}: unsupported video format {self.ext!r} (use .gif or .mp4)')
        self.path, self.texts, self.fps, self.max_width = path, list(texts), fps, max_width
        self.step = max(1, math.ceil(num_frames / gif_max_frames)) if self.ext == '.gif' else 1
        self._gif: List[Image.Image] = []
        self._mp4: Optional[cv2.VideoWriter] = None
        self.count = 0

    def render(self, frame: np.ndarray, masks: Sequence[np.ndarray]) -> np.ndarray:
        """(H', W', 3) BGR overlay of E (H, W) masks on a BGR frame, captioned, scaled down."""
        img = add_caption(overlay_masks(frame, masks), self.texts)
        if img.shape[1] > self.max_width:
            scale = self.max_width / img.shape[1]
            img = cv2.resize(img, (self.max_width, int(round(img.shape[0] * scale))))
        return img

    def add(self, frame: np.ndarray, masks: Sequence[np.ndarray]) -> None:
        """Add the next frame (BGR) with its E masks."""
        index, self.count = self.count, self.count + 1
        if index % self.step:
            return
        img = self.render(frame, masks)
        if self.ext == '.gif':
            rgb = Image.fromarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
            self._gif.append(rgb.convert('P', palette=Image.Palette.ADAPTIVE))
            return
        if self._mp4 is None:
            h, w = img.shape[:2]
            self._mp4 = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*'mp4v'), self.fps,
                                        (w, h))
            if not self._mp4.isOpened():
                raise RuntimeError(f'{self.path}: OpenCV cannot open an mp4 writer here; '
                                   'use gif')
        self._mp4.write(img)

    def close(self) -> str:
        """Finish the file; returns its path."""
        if self.count == 0:
            raise ValueError(f'{self.path}: no frames to write')
        if self.ext == '.gif':
            self._gif[0].save(self.path, save_all=True, append_images=self._gif[1:],
                              duration=int(1000 * self.step / self.fps), loop=0)
            self._gif = []
        elif self._mp4 is not None:
            self._mp4.release()
            self._mp4 = None
        return self.path

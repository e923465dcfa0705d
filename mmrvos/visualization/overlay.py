"""Overlay rendering of referring masks on frames, and GIF / MP4 writers."""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image

PALETTE = [(220, 20, 60), (0, 130, 255), (0, 200, 80), (255, 160, 0), (170, 0, 255),
           (0, 210, 210)]  # RGB, one colour per expression


def overlay_masks(frame: np.ndarray, masks: Sequence[np.ndarray],
                  colors: Optional[Sequence[Tuple[int, int, int]]] = None,
                  alpha: float = 0.5) -> np.ndarray:
    """Blend binary masks onto a frame and outline them.

    Args:
        frame (np.ndarray): (H, W, 3) uint8 BGR frame.
        masks (list[np.ndarray]): (H, W) bool masks, one per expression.
        colors (list[tuple]): RGB colours (default: :data:`PALETTE`).
        alpha (float): mask opacity.

    Returns:
        np.ndarray: (H, W, 3) uint8 BGR frame with the overlays.
    """
    out = frame.astype(np.float32).copy()
    colors = colors or PALETTE
    for i, mask in enumerate(masks):
        if mask.shape != frame.shape[:2]:
            raise ValueError(f'mask {mask.shape} does not match frame {frame.shape[:2]}')
        r, g, b = colors[i % len(colors)]
        color = np.array([b, g, r], np.float32)
        out[mask] = (1 - alpha) * out[mask] + alpha * color
    out = out.clip(0, 255).astype(np.uint8)
    for i, mask in enumerate(masks):
        r, g, b = colors[i % len(colors)]
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, (b, g, r), 2)
    return out


def add_caption(frame: np.ndarray, lines: Sequence[str],
                colors: Optional[Sequence[Tuple[int, int, int]]] = None) -> np.ndarray:
    """Put one caption line per expression in a banner above the (H, W, 3) BGR frame."""
    colors = colors or PALETTE
    height = 18 * len(lines) + 6
    banner = np.zeros((height, frame.shape[1], 3), np.uint8)
    for i, line in enumerate(lines):
        r, g, b = colors[i % len(colors)]
        cv2.putText(banner, line, (4, 16 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (b, g, r),
                    1, cv2.LINE_AA)
    return np.concatenate([banner, frame], 0)


def write_video(frames: List[np.ndarray], path: str, fps: float = 6.0) -> str:
    """Write BGR frames as an animated GIF (``.gif``) or an MP4 (``.mp4``, OpenCV mp4v)."""
    if not frames:
        raise ValueError(f'{path}: no frames to write')
    ext = osp.splitext(path)[1].lower()
    if ext == '.gif':
        images = [Image.fromarray(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:],
                       duration=int(1000 / fps), loop=0)
    elif ext == '.mp4':
        h, w = frames[0].shape[:2]
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
        if not writer.isOpened():
            raise RuntimeError(f'{path}: OpenCV cannot open an mp4 writer here; use .gif')
        for f in frames:
            writer.write(f)
        writer.release()
    else:
        raise ValueError(f'{path}: unsupported video format {ext!r} (use .gif or .mp4)')
    return path


def render_overlay_video(frames: List[np.ndarray], masks: Sequence[np.ndarray],
                         texts: Sequence[str], path: str, fps: float = 6.0,
                         max_width: int = 640) -> str:
    """Render E expressions' (T, H, W) masks over T BGR frames into a GIF/MP4 at ``path``."""
    out = []
    for t, frame in enumerate(frames):
        img = overlay_masks(frame, [m[t] for m in masks])
        img = add_caption(img, texts)
        if img.shape[1] > max_width:
            scale = max_width / img.shape[1]
            img = cv2.resize(img, (max_width, int(round(img.shape[0] * scale))))
        out.append(img)
    return write_video(out, path, fps)

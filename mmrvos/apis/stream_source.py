"""Frames for :class:`~mmrvos.apis.RVOSStream`, read one at a time as they are needed: a folder
of frames, a video file, a camera (its index) or any URL OpenCV opens (``rtsp://``,
``http://``, ``file://`` ...).

Nothing is read ahead or checked up front (a camera has no end): a bad frame is found when it
is reached. A folder's frames are handed over as their paths (:meth:`RVOSStream.step` checks
and decodes them: a truncated file or a frame of another size is an error naming it). A video
file that stops decoding before the frame count its header announces, and a camera or URL
that stops delivering frames, raise :class:`StreamStopped` naming the source and the frames
read.
"""
import os
import os.path as osp
import time
from typing import Iterator, Optional, Tuple, Union

import numpy as np

from .video_reader import IMAGE_EXTS, order_frame_files


class StreamStopped(ValueError):
    """A camera or URL stopped delivering frames, or a video file stopped decoding before its
    announced end (damaged)."""


class StreamSource:
    """Frames of a folder, a video file, a camera or a URL, in order, read lazily.

    Iterating yields ``(name, frame)``: ``name`` the frame file's stem (folder) or its 5-digit
    index; ``frame`` the image path (folder) or an (H, W, 3) uint8 BGR array.

    Args:
        source (str | int): a frame folder, a video file, a camera index (``0`` or ``'0'``)
            or a URL.
        stall_timeout (float): a camera or URL that gives no frame for this many seconds
            has stopped (:class:`StreamStopped`). Defaults to 2.

    Attributes:
        kind (str): ``'folder'``, ``'file'``, ``'camera'`` or ``'url'``.
        description (str): what messages name.
        length (int | None): frames announced (folder: counted; video file: its header;
            camera / URL: None).
        fps (float | None): the source's frame rate where it gives one.

    Raises:
        FileNotFoundError: no such folder or file, or a folder without frames.
        ValueError: a file, camera or URL OpenCV cannot open.
    """

    def __init__(self, source: Union[str, int], stall_timeout: float = 2.0) -> None:
        self.stall_timeout = float(stall_timeout)
        self.fps: Optional[float] = None
        self.length: Optional[int] = None
        self._cap = None
        self.paths = None
        if isinstance(source,
                      (int, np.integer)) or (isinstance(source, str) and source.strip().isdigit()):
            self.kind, self.index = 'camera', int(source)
            self.description = f'camera {self.index}'
            self._open(self.index)
        elif isinstance(source, str) and '://' in source:
            self.kind, self.description = 'url', source
            self._open(source)
        elif isinstance(source, str) and osp.isdir(source):
            self.kind, self.description = 'folder', source
            names = [
                n for n in os.listdir(source)
                if n.lower().endswith(IMAGE_EXTS) and osp.isfile(osp.join(source, n))
            ]
            if not names:
                raise FileNotFoundError(f'{source}: folder holds no frames '
                                        f'({", ".join(IMAGE_EXTS)})')
            self.paths = [osp.join(source, n) for n in order_frame_files(names, source)]
            self.length = len(self.paths)
        elif isinstance(source, str) and osp.isfile(source):
            self.kind, self.description = 'file', source
            self._open(source)
        else:
            raise FileNotFoundError(f'{source}: no such video file or frame folder (nor a '
                                    'camera index or a URL)')

    def _open(self, target) -> None:
        import cv2
        cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            cap.release()
            what = 'not a readable video' if self.kind == 'file' else 'OpenCV cannot open it'
            raise ValueError(f'{self.description}: {what}')
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else None
        if self.kind == 'file':
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            self.length = count if count > 0 else None
        self._cap = cap

    def _read(self) -> Optional[np.ndarray]:
        """The next decoded frame, or None; a live source is given ``stall_timeout``."""
        ok, frame = self._cap.read()
        if ok or self.kind == 'file':
            return frame if ok else None
        deadline = time.monotonic() + self.stall_timeout
        while time.monotonic() < deadline:
            time.sleep(0.05)
            ok, frame = self._cap.read()
            if ok:
                return frame
        return None

    def __iter__(self) -> Iterator[Tuple[str, Union[str, np.ndarray]]]:
        if self.paths is not None:
            for path in self.paths:
                yield osp.splitext(osp.basename(path))[0], path
            return
        count = 0
        try:
            while True:
                frame = self._read()
                if frame is None:
                    break
                yield f'{count:05d}', frame
                count += 1
        finally:
            self.close()
        if self.kind == 'file':
            if count == 0:
                raise ValueError(f'{self.description}: not a readable video (no frame could '
                                 'be decoded)')
            if self.length is not None and count < self.length:
                raise StreamStopped(
                    f'{self.description}: cannot decode frame {count} (the file announces '
                    f'{self.length} frames; damaged video?); {count} frames were read')
            return
        raise StreamStopped(f'{self.description} stopped delivering frames after {count} '
                            f'frames (none for {self.stall_timeout:g} s)')

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __del__(self):
        self.close()


def open_stream_source(source: Union[str, int], stall_timeout: float = 2.0) -> StreamSource:
    """:class:`StreamSource` of a frame folder, a video file, a camera index or a URL."""
    return StreamSource(source, stall_timeout)


__all__ = ['StreamSource', 'StreamStopped', 'open_stream_source']

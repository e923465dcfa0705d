"""Lazy reading of a video (a folder of frames or a video file): frames are decoded when asked
for, one at a time, so that a long video is never held in memory.

A frame folder is checked up front from the file headers and tails only (no decoding): every
frame must be a complete image (JPEG end marker, PNG ``IEND``), all of one size, and no two
frames may share a name; frames are ordered by their numbers (``2.jpg`` before ``10.jpg``).
"""
import copy
import os
import os.path as osp
import re
import warnings
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from mmrvos.fileio import check_image_complete, image_size, read_image_strict

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp')


class FrameOrderWarning(UserWarning):
    """Frame names that sort differently by text and by number (``1.jpg``, ``10.jpg``,
    ``2.jpg``): the frames are taken in numeric order."""


def natural_key(name: str) -> tuple:
    """Sort key comparing the digit runs of ``name`` as numbers (``2.jpg`` < ``10.jpg``)."""
    parts = re.split(r'(\d+)', name)
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts)), name


def order_frame_files(names: Sequence[str], where: str) -> List[str]:
    """Frame file names in playing order (numeric), refusing two files of one frame name.

    Raises:
        ValueError: two files share a stem (``00001.jpg`` and ``00001.png``): their masks
            would be written to the same ``00001.png``.

    Warns:
        FrameOrderWarning: the numeric order differs from the alphabetical one.
    """
    stems = {}
    for n in sorted(names):
        stem = osp.splitext(n)[0]
        if stem in stems:
            raise ValueError(f'{where}: two frames named {stem!r} ({stems[stem]} and {n}); '
                             'keep one file per frame')
        stems[stem] = n
    ordered = sorted(names, key=natural_key)
    if ordered != sorted(names):
        warnings.warn(
            f'{where}: frame names are not zero-padded ({", ".join(ordered[:3])}, ...); '
            'frames are taken in numeric order, not alphabetical order', FrameOrderWarning)
    return ordered


class FrameSource:
    """T frames, read lazily. Subclasses set ``names`` (T frame names, used for the output
    files) and ``size`` ((W, H) of every frame) and implement :meth:`iter_frames`."""

    names: List[str]
    size: Tuple[int, int]
    description: str
    fps: Optional[float] = None  # frames per second where the source knows it

    def __len__(self) -> int:
        return len(self.names)

    def iter_frames(self, start: int = 0, stop: Optional[int] = None) -> Iterator[np.ndarray]:
        """Frames ``start .. stop - 1`` as (H, W, 3) uint8 BGR arrays, decoded one by one."""
        raise NotImplementedError

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as an (H, W, 3) uint8 BGR array."""
        return next(self.iter_frames(index, index + 1))

    def reader(self) -> 'FrameSource':
        """The same frames with a decoding position of their own (no check or count again):
        two consumers then each read a video file sequentially."""
        return copy.copy(self)

    def _range(self, start: int, stop: Optional[int]) -> Tuple[int, int]:
        stop = len(self) if stop is None else min(stop, len(self))
        if not 0 <= start <= stop:
            raise IndexError(f'frames {start}:{stop} out of range for {self.description} '
                             f'({len(self)} frames)')
        return start, stop


class FrameFiles(FrameSource):
    """Frames from image files (:func:`read_image_strict`: truncated files are errors).

    Args:
        paths (list[str]): image files in playing order.
        description (str): what to name in messages (the folder).
        check (bool): check every file's header and tail now (size, completeness).
    """

    def __init__(self,
                 paths: Sequence[str],
                 description: Optional[str] = None,
                 check: bool = True) -> None:
        if not paths:
            raise ValueError('no frame given')
        self.paths = list(paths)
        self.description = description or osp.dirname(self.paths[0]) or '.'
        self.names = [osp.splitext(osp.basename(p))[0] for p in self.paths]
        if check:
            self.check()
        else:
            self.size = image_size(self.paths[0])

    def check(self) -> None:
        """Every file exists, is a complete image and has the first frame's size.

        Raises:
            FileNotFoundError / OSError / ValueError: naming the first bad file.
        """
        self.size = None
        for path in self.paths:
            check_image_complete(path)
            size = image_size(path)
            if self.size is None:
                self.size = size
            elif size != self.size:
                raise ValueError(
                    f'{path}: frame size {size[0]}x{size[1]} differs from the first frame '
                    f'{osp.basename(self.paths[0])} ({self.size[0]}x{self.size[1]}); all '
                    'frames of a video must have one size')

    def iter_frames(self, start: int = 0, stop: Optional[int] = None) -> Iterator[np.ndarray]:
        start, stop = self._range(start, stop)
        for path in self.paths[start:stop]:
            img = read_image_strict(path)
            if img.shape[:2] != (self.size[1], self.size[0]):
                raise ValueError(f'{path}: decoded size {img.shape[1]}x{img.shape[0]} differs '
                                 f'from {self.size[0]}x{self.size[1]}')
            yield img


class VideoFile(FrameSource):
    """Frames of a video file (mp4, avi, ...), decoded sequentially with
    :class:`mmcv.VideoReader`; a read that starts before the last position opens a new reader
    and decodes forward (OpenCV's seeking is not frame-exact for every codec). The frame count
    is counted by decoding once (container metadata can be wrong); frame names are 5-digit
    indices; ``fps`` is the container's frame rate (None when it gives none).

    Raises:
        FileNotFoundError: no such file. ValueError: not a readable video.
    """

    _reader = None

    def __init__(self, path: str) -> None:
        self.path = self.description = path
        reader = self._open()
        count, first = 0, None
        try:
            if reader.opened:
                first = reader.read()
                if first is not None:
                    count = 1
                    while reader.vcap.grab():
                        count += 1
            fps = reader.fps
        finally:
            reader.vcap.release()
        if not count:
            raise ValueError(f'{path}: not a readable video (no frame could be decoded)')
        self.size = (first.shape[1], first.shape[0])
        self.fps = float(fps) if fps and 0 < fps < 1000 else None
        self.names = [f'{i:05d}' for i in range(count)]
        self._reader = None

    def _open(self):
        import mmcv
        if not osp.isfile(self.path):
            raise FileNotFoundError(f'{self.path}: no such video file')
        return mmcv.VideoReader(self.path, cache_capacity=1)

    def _seek(self, start: int) -> None:
        if self._reader is None or self._reader.position > start:
            self.close()
            self._reader = self._open()
        while self._reader.position < start:
            if self._reader.read() is None:
                raise ValueError(f'{self.path}: cannot decode frame {self._reader.position}')

    def iter_frames(self, start: int = 0, stop: Optional[int] = None) -> Iterator[np.ndarray]:
        start, stop = self._range(start, stop)
        self._seek(start)
        for index in range(start, stop):
            frame = self._reader.read()
            if frame is None:
                raise ValueError(f'{self.path}: cannot decode frame {index}')
            yield frame

    def reader(self) -> 'VideoFile':
        twin = copy.copy(self)
        twin._reader = None
        return twin

    def close(self) -> None:
        if self._reader is not None:
            self._reader.vcap.release()
            self._reader = None

    def __del__(self):
        self.close()


def open_video(video: Union[str, Sequence[str], FrameSource]) -> FrameSource:
    """A lazy :class:`FrameSource` for a folder of frames, a video file or a list of image
    paths (checked up front, see the module docstring).

    Raises:
        FileNotFoundError: no such file or folder, or a folder without frames.
        ValueError / OSError: naming the first bad file.
    """
    if isinstance(video, FrameSource):
        return video
    if isinstance(video, (list, tuple)):
        return FrameFiles(video)
    if osp.isdir(video):
        names = [
            n for n in os.listdir(video)
            if n.lower().endswith(IMAGE_EXTS) and osp.isfile(osp.join(video, n))
        ]
        if not names:
            raise FileNotFoundError(f'{video}: folder holds no frames ({", ".join(IMAGE_EXTS)})')
        return FrameFiles([osp.join(video, n) for n in order_frame_files(names, video)],
                          description=video)
    if osp.isfile(video):
        return VideoFile(video)
    raise FileNotFoundError(f'{video}: no such video file or frame folder')


__all__ = [
    'FrameSource', 'FrameFiles', 'VideoFile', 'open_video', 'order_frame_files', 'natural_key',
    'FrameOrderWarning', 'IMAGE_EXTS'
]

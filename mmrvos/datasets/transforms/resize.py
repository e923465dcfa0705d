"""Short-side resize with the rounding and interpolation of the official ReferDINO
evaluation."""
from typing import Optional, Tuple, Union

import numpy as np
from mmdet.datasets.transforms import ResizeShortestEdge
from mmdet.registry import TRANSFORMS


def short_side_size(width: int,
                    height: int,
                    short_side: int,
                    max_size: Optional[int] = None) -> Tuple[int, int]:
    """(new_width, new_height) of the official (DETR / torchvision ``Resize(int)``) rule.

    The short side becomes ``short_side`` and the long side ``int(short_side * long / short)``
    (truncated, not rounded: an 854x480 frame becomes 640x360, not 641x360). With
    ``max_size``, when the long side would exceed it the short side is first reduced to
    ``int(round(max_size * short / long))``. A frame whose short side already has the size is
    left unchanged.
    """
    if width < 1 or height < 1:
        raise ValueError(f'image size must be positive, got {width}x{height}')
    size = short_side
    short, long = min(width, height), max(width, height)
    if max_size is not None and long / short * size > max_size:
        size = int(round(max_size * short / long))
    if short == size:
        return width, height
    if width < height:
        return size, int(size * height / width)
    return int(size * width / height), size


@TRANSFORMS.register_module()
class ShortSideResize(ResizeShortestEdge):
    """Resize so that the short side is ``scale``, as the official ReferDINO evaluation does.

    The official Ref-YouTube-VOS / Ref-DAVIS / MeViS evaluation resizes every frame with
    torchvision's ``T.Resize(360)`` on a PIL image (short side 360, long side truncated, no cap,
    PIL bilinear with its antialiasing); A2D-Sentences / JHMDB-Sentences with
    ``RandomResize([360], max_size=640)``. mmdet's ``Resize(keep_ratio=True)`` instead rounds
    the sizes, caps the long side at ``scale[0]`` and interpolates with OpenCV (no
    antialiasing), which gives different input pixels (and for 854x480 frames another width).

    Args:
        scale (int): target short side. Defaults to 360.
        max_size (int, optional): largest long side (official A2D rule); None: no cap.
        backend (str): ``'pillow'`` (default, as the official code) or ``'cv2'``.
        interpolation (str): Defaults to ``'bilinear'``.
        **resize_kwargs: other arguments of mmdet's ``Resize``.
    """

    def __init__(self,
                 scale: Union[int, Tuple[int, int]] = 360,
                 max_size: Optional[int] = None,
                 backend: str = 'pillow',
                 interpolation: str = 'bilinear',
                 **resize_kwargs) -> None:
        if isinstance(scale, (tuple, list)):
            scale = min(scale)
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f'scale must be a positive integer (short side), got {scale!r}')
        if max_size is not None and max_size < scale:
            raise ValueError(f'max_size ({max_size}) must be at least scale ({scale})')
        super().__init__(
            scale=scale,
            max_size=max_size,
            backend=backend,
            interpolation=interpolation,
            keep_ratio=False,
            **resize_kwargs)

    def _get_output_shape(self, img: np.ndarray, short_edge_length) -> Tuple[int, int]:
        """(W, H) after resizing ``img``."""
        h, w = img.shape[:2]
        return short_side_size(w, h, self.scale, self.max_size)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scale={self.scale}, max_size={self.max_size}, '
                f"backend={self.resize.backend!r}, interpolation={self.resize.interpolation!r})")

"""mmdet's ``TrackDataPreprocessor`` with its own padding rule for training batches."""
from typing import Dict, Optional

from mmdet.models.data_preprocessors import TrackDataPreprocessor
from mmdet.registry import MODELS


@MODELS.register_module()
class RVOSDataPreprocessor(TrackDataPreprocessor):
    """``TrackDataPreprocessor`` that pads training batches and inference inputs differently.

    The official ReferDINO pads a training batch to its largest clip rounded up to a multiple
    of 32 (its collator) but runs inference on the unpadded video (one video, divisor 1): a
    360x640 video stays 360x640 instead of becoming 384x640, which changes every feature map
    and the valid ratios of the deformable attention.

    ``pad_size_divisor`` is the divisor at inference (``forward(..., training=False)``: test,
    validation, demo and :mod:`mmrvos.apis`, which read this attribute to predict the padded
    shape); ``train_pad_size_divisor`` the one of training batches (``training=True``).

    Args:
        pad_size_divisor (int): padding divisor at inference. Defaults to 1 (no padding of
            a single video; a batch of clips of different sizes is still padded to its
            largest clip).
        train_pad_size_divisor (int, optional): padding divisor of training batches; None
            uses ``pad_size_divisor``.
        **kwargs: ``TrackDataPreprocessor`` arguments (``mean``, ``std``, ``bgr_to_rgb``,
            ``pad_mask`` ...).
    """

    def __init__(self,
                 *args,
                 pad_size_divisor: int = 1,
                 train_pad_size_divisor: Optional[int] = None,
                 **kwargs) -> None:
        for name, value in (('pad_size_divisor', pad_size_divisor), ('train_pad_size_divisor',
                                                                     train_pad_size_divisor)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f'{name} must be a positive integer, got {value!r}')
        super().__init__(*args, pad_size_divisor=pad_size_divisor, **kwargs)
        self.test_pad_size_divisor = pad_size_divisor
        self.train_pad_size_divisor = train_pad_size_divisor or pad_size_divisor

    def forward(self, data: dict, training: bool = False) -> Dict:
        """Normalise, pad (with the training or the inference divisor) and stack."""
        self.pad_size_divisor = self.train_pad_size_divisor if training \
            else self.test_pad_size_divisor
        try:
            return super().forward(data, training)
        finally:
            self.pad_size_divisor = self.test_pad_size_divisor

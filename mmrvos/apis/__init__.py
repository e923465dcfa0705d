"""High-level APIs: ``init_rvos_model``, ``inference_rvos`` / ``segment_video`` (lazy,
frame by frame) and the lazy video reader."""
from .inference import (LazyVideoTensor, check_device, inference_rvos, init_rvos_model,
                        load_video, prepare_video, preprocess_frames, segment_video)
from .video_reader import FrameOrderWarning, FrameSource, open_video

__all__ = ['inference_rvos', 'init_rvos_model', 'segment_video', 'load_video',
           'open_video', 'prepare_video', 'preprocess_frames', 'LazyVideoTensor',
           'check_device', 'FrameSource', 'FrameOrderWarning']

"""High-level APIs: :class:`RVOSInferencer` (a video and expressions -> masks, overlays, a
summary), the functional ``init_rvos_model`` / ``inference_rvos`` / ``segment_video`` over the
same machinery, :class:`RVOSStream` (online: one frame in, masks out), the config's test
pipeline for a user's video and the lazy video reader."""
from .inference import (build_video_pipeline, check_device, check_texts, inference_rvos,
                        init_rvos_model, load_video, segment_video, stream_video)
from .result_writer import INFERENCE_OUTPUTS, RVOSResultWriter
from .rvos_inferencer import RVOSInferencer, find_metafile_model, resolve_model
from .rvos_stream import RVOSStream
from .video_pipeline import LazyVideoTensor, VideoTestPipeline
from .video_reader import FrameOrderWarning, FrameSource, open_video

__all__ = [
    'RVOSInferencer', 'RVOSStream', 'inference_rvos', 'init_rvos_model', 'segment_video',
    'stream_video', 'load_video', 'open_video', 'build_video_pipeline', 'VideoTestPipeline',
    'LazyVideoTensor', 'check_device', 'check_texts', 'FrameSource', 'FrameOrderWarning',
    'RVOSResultWriter', 'INFERENCE_OUTPUTS', 'resolve_model', 'find_metafile_model'
]

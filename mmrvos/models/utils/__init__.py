"""Helpers of the RVOS models: referring-expression handling and clip <-> frame bookkeeping."""
from .clip_frames import (frame_times, gather_queries, mask_padding_and_ratio, split_levels,
                          to_clip_shape)
from .referring_text import (TEXT_KEYS, TextTruncatedWarning, clip_text, referring_captions,
                             repeat_text, slice_text, warn_truncated_captions)
from .sam2_tracking import frame_slice, new_track_state, remember, sam2_frame_features

__all__ = [
    'frame_times', 'gather_queries', 'mask_padding_and_ratio', 'split_levels', 'to_clip_shape',
    'TEXT_KEYS', 'TextTruncatedWarning', 'clip_text', 'referring_captions', 'repeat_text',
    'slice_text', 'warn_truncated_captions', 'frame_slice', 'new_track_state', 'remember',
    'sam2_frame_features'
]

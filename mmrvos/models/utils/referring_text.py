"""The referring expression of a clip: reading it, checking it, and sharing its encoding
between the clip's frames.

Shapes: N clips, T frames, L text tokens, C channels.
"""
import warnings
from typing import Dict, List, Sequence

from mmdet.structures import TrackDataSample
from torch import Tensor

#: the text-model outputs the RVOS detectors keep (``embedded`` (N, L, C), ``masks``
#: (N, L, L), ``position_ids`` (N, L), ``text_token_mask`` (N, L), ``hidden``)
TEXT_KEYS = ('embedded', 'masks', 'position_ids', 'text_token_mask', 'hidden')


class TextTruncatedWarning(UserWarning):
    """A referring expression is longer than the text model reads; its tail is dropped."""


def clip_text(sample: TrackDataSample) -> str:
    """The expression of a clip: its ``text`` metainfo, else its first frame's."""
    text = sample.metainfo.get('text')
    if text is None and len(sample.video_data_samples):
        text = sample.video_data_samples[0].metainfo.get('text')
    return text


def referring_captions(texts: Sequence[str]) -> List[str]:
    """Stripped captions ending with a period (as Grounding DINO reads them).

    Raises:
        ValueError: an expression is not a string or is blank.
    """
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f'ReferDINO needs a non-empty referring expression, got {text!r}')
    return [t.strip() if t.strip().endswith('.') else t.strip() + '.' for t in texts]


def warn_truncated_captions(language_model, captions: Sequence[str]) -> None:
    """Warn (:class:`TextTruncatedWarning`, at the caller of the caller) for every caption
    with more tokens (special tokens included) than ``language_model.max_tokens``; the text
    model truncates it there."""
    limit = getattr(language_model, 'max_tokens', None)
    tokenizer = getattr(language_model, 'tokenizer', None)
    if limit is None or tokenizer is None:
        return
    for caption in captions:
        count = len(tokenizer(caption, truncation=False)['input_ids'])
        if count > limit:
            shown = caption if len(caption) <= 80 else caption[:77] + '...'
            warnings.warn(
                f'the expression {shown!r} has {count} tokens; the text model reads '
                f'{limit}, the last {count - limit} are dropped',
                TextTruncatedWarning,
                stacklevel=3)


def repeat_text(text_dict: Dict[str, Tensor], times: int) -> Dict[str, Tensor]:
    """Every per-clip tensor (N, ...) repeated ``times`` times along the batch: (N * T, ...),
    clip-major (the frames of a clip are consecutive). Other values are kept as they are."""
    return {
        k: (v.repeat_interleave(times, 0) if isinstance(v, Tensor) else v)
        for k, v in text_dict.items()
    }


def slice_text(text_dict: Dict[str, Tensor], index: int, times: int) -> Dict[str, Tensor]:
    """The text of clip ``index`` for ``times`` frames: (times, ...) expanded views."""
    return {
        k: (v[index:index + 1].expand(times, *v.shape[1:]) if isinstance(v, Tensor) else v)
        for k, v in text_dict.items()
    }

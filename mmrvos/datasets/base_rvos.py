"""Common base of the RVOS datasets: file checks, expression checks and the sample contract.

Every RVOS dataset yields one **(video, expression)** pair per index. ``get_data_info(idx)``
returns a dict with video-level keys

- ``video_id`` (str), ``exp_id`` (str), ``text`` (str, whitespace-normalised),
  ``exp_type`` (str | None), ``annotator`` (int | None),
- ``frame_ids`` (list[str], all frames of the video in order), ``img_paths`` (list[str]) or
  ``video_path`` (str), ``mask_refs`` (list[dict | None] per frame, see
  :mod:`mmrvos.datasets.transforms.mask_sources`), optionally ``key_frames`` (list[int]),

which :class:`~mmrvos.datasets.transforms.ClipSample` turns into a clip.
"""
import os
import os.path as osp
import warnings
from typing import Iterable, List, Optional, Sequence, Tuple

from mmengine.dataset import BaseDataset

# one JSON reader / obj_id parser for datasets and evaluation
from mmrvos.evaluation.functional.meta_io import load_json, parse_obj_ids

__all__ = [
    'DatasetRepairWarning', 'BaseRVOSDataset', 'load_json', 'list_dir', 'check_frames_exist',
    'MAX_LISTED'
]

MAX_LISTED = 20  # dropped expressions listed in a message


class DatasetRepairWarning(UserWarning):
    """Emitted when a dataset skips or repairs a bad entry (the message names the file)."""


def list_dir(path: str) -> set:
    """Names in a directory (empty set when it does not exist)."""
    return set(os.listdir(path)) if osp.isdir(path) else set()


def check_frames_exist(frame_dir: str, names: Iterable[str], suffix: str) -> None:
    """Raise ``FileNotFoundError`` naming the first missing frame file of a video."""
    present = list_dir(frame_dir)
    if not present and not osp.isdir(frame_dir):
        raise FileNotFoundError(f'frame directory not found: {frame_dir}')
    missing = [n for n in names if n + suffix not in present]
    if missing:
        raise FileNotFoundError(f'missing frame: {osp.join(frame_dir, missing[0] + suffix)} '
                                f'({len(missing)} of the listed frames are missing in {frame_dir})')


class BaseRVOSDataset(BaseDataset):
    """Base of RVOS datasets (mmengine ``BaseDataset``: lazy init, ``serialize_data``, metainfo).

    Expression checks (``where`` in messages names the annotation file, video and expression):

    - empty expression: ``on_empty_text='error'`` raises ``ValueError``; ``'skip'`` drops the
      expression with a :class:`DatasetRepairWarning`.
    - too long: an expression longer than ``text_max_tokens`` tokens (``[CLS]``/``[SEP]``
      included) raises ``ValueError`` (``on_long_text='error'``) or is truncated with a warning
      (``'truncate'``). Tokens are counted by the tokenizer at ``tokenizer`` (a local
      HuggingFace tokenizer directory, loaded offline) when given; the default cheap check
      counts whitespace words + 2, a lower bound of the BERT token count.

    Args:
        text_max_tokens (int): text model limit. Defaults to 256 (Grounding DINO).
        tokenizer (str, optional): local tokenizer directory for exact token counts.
        on_long_text (str): 'error' or 'truncate'.
        on_empty_text (str): 'error' or 'skip'.
        lowercase (bool): lower-case expressions (as ReferDINO does). Defaults to True.
        check_files (bool): check that every listed frame exists when loading the annotation.
        strict (bool): an expression that would silently drop out of training and of the
            J&F average (its referred object is in no annotated frame, ...) raises a
            ``ValueError`` listing every such expression (video, expression id, reason).
            ``strict=False`` drops them with one :class:`DatasetRepairWarning` that gives
            their count and lists them. Defaults to True.
    """

    METAINFO = dict(classes=('object', ), dataset_name='rvos')

    def __init__(self,
                 *args,
                 text_max_tokens: int = 256,
                 tokenizer: Optional[str] = None,
                 on_long_text: str = 'error',
                 on_empty_text: str = 'error',
                 lowercase: bool = True,
                 check_files: bool = True,
                 strict: bool = True,
                 **kwargs) -> None:
        if on_long_text not in ('error', 'truncate'):
            raise ValueError(f"on_long_text must be 'error' or 'truncate', got {on_long_text!r}")
        if on_empty_text not in ('error', 'skip'):
            raise ValueError(f"on_empty_text must be 'error' or 'skip', got {on_empty_text!r}")
        self.text_max_tokens = text_max_tokens
        self.tokenizer_path = tokenizer
        self._tokenizer = None
        self.on_long_text = on_long_text
        self.on_empty_text = on_empty_text
        self.lowercase = lowercase
        self.check_files = check_files
        self.strict = strict
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------ dropped expressions
    def report_dropped(self, dropped: Sequence[Tuple[str, str, str]], source: str) -> None:
        """Raise (``strict``) or warn about expressions that would be dropped.

        Args:
            dropped: ``(video_id, exp_id, reason)`` of each expression.
            source (str): the annotation file, for the message.
        """
        if not dropped:
            return
        use = 'scoring (J&F)' if self.test_mode else 'training'
        lines = [f'  video {v!r} expression {e!r}: {r}' for v, e, r in dropped[:MAX_LISTED]]
        if len(dropped) > MAX_LISTED:
            lines.append(f'  ... and {len(dropped) - MAX_LISTED} more')
        msg = (f'{source}: {len(dropped)} expression(s) would silently drop out of {use}:\n' +
               '\n'.join(lines))
        if self.strict:
            raise ValueError(msg + '\nFix the annotations, or pass strict=False '
                             '(tools/test.py --no-strict) to drop them with a warning')
        warnings.warn(msg + f'\nstrict=False: {len(dropped)} expression(s) dropped',
                      DatasetRepairWarning)

    # ------------------------------------------------------------------ text checks
    def _count_tokens(self, text: str) -> List:
        if self.tokenizer_path is None:
            return ['[CLS]'] + text.split() + ['[SEP]']
        if self._tokenizer is None:
            from transformers import AutoTokenizer
            self._tokenizer = AutoTokenizer.from_pretrained(
                self.tokenizer_path, local_files_only=True)
        return self._tokenizer(text)['input_ids']

    def _truncate(self, text: str) -> str:
        limit = self.text_max_tokens - 2
        if self.tokenizer_path is None:
            return ' '.join(text.split()[:limit])
        ids = self._tokenizer(text, add_special_tokens=False)['input_ids'][:limit]
        return self._tokenizer.decode(ids)

    def check_text(self, text, where: str) -> Optional[str]:
        """Normalise an expression; returns None when it is skipped (see class doc)."""
        if not isinstance(text, str):
            raise TypeError(f'{where}: expression must be a string, got {type(text).__name__}')
        text = ' '.join(text.split())
        if self.lowercase:
            text = text.lower()
        if not text:
            if self.on_empty_text == 'error':
                raise ValueError(f'{where}: empty expression')
            warnings.warn(f'{where}: empty expression skipped', DatasetRepairWarning)
            return None
        num = len(self._count_tokens(text))
        if num > self.text_max_tokens:
            if self.on_long_text == 'error':
                raise ValueError(f'{where}: expression has {num} tokens, more than the text '
                                 f'model limit text_max_tokens={self.text_max_tokens}')
            warnings.warn(
                f'{where}: expression has {num} tokens; truncated to '
                f'text_max_tokens={self.text_max_tokens}', DatasetRepairWarning)
            text = self._truncate(text)
        return text

    def _join(self, path: Optional[str]) -> Optional[str]:
        if path is None or osp.isabs(path) or not self.data_root:
            return path
        return osp.join(self.data_root, path)

    @staticmethod
    def parse_obj_ids(value, where: str) -> List[int]:
        """obj_id as str / int / list -> list[int] (1..255), with a clear error."""
        return parse_obj_ids(value, where)

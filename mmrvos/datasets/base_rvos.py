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
import json
import os
import os.path as osp
import warnings
from typing import Iterable, List, Optional

from mmengine.dataset import BaseDataset


class DatasetRepairWarning(UserWarning):
    """Emitted when a dataset skips or repairs a bad entry (the message names the file)."""


def load_json(path: str, required_key: Optional[str] = None):
    """Load a JSON file; errors name the file (missing, invalid JSON, missing top-level key)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'annotation file not found: {path}')
    try:
        with open(path, 'r', encoding='utf-8') as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f'{path} is not valid JSON: {e}') from e
    if required_key is not None and (not isinstance(data, dict) or required_key not in data):
        raise ValueError(f'{path}: expected a JSON object with a {required_key!r} key')
    return data


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
        raise FileNotFoundError(
            f'missing frame: {osp.join(frame_dir, missing[0] + suffix)} '
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
    """

    METAINFO = dict(classes=('object', ), dataset_name='rvos')

    def __init__(self, *args, text_max_tokens: int = 256, tokenizer: Optional[str] = None,
                 on_long_text: str = 'error', on_empty_text: str = 'error',
                 lowercase: bool = True, check_files: bool = True, **kwargs) -> None:
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
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------ text checks
    def _count_tokens(self, text: str) -> List:
        if self.tokenizer_path is None:
            return ['[CLS]'] + text.split() + ['[SEP]']
        if self._tokenizer is None:
            from transformers import AutoTokenizer
            self._tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_path,
                                                            local_files_only=True)
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
            warnings.warn(f'{where}: expression has {num} tokens; truncated to '
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
        if value is None:
            return []
        values = value if isinstance(value, (list, tuple)) else [value]
        out = []
        for v in values:
            try:
                i = int(v)
            except (TypeError, ValueError):
                raise ValueError(f'{where}: obj_id {v!r} is not an integer') from None
            if not 0 < i < 256:
                raise ValueError(f'{where}: obj_id {i} outside 1..255 (palette PNG ids)')
            out.append(i)
        return out

"""Reading the JSON files of RVOS datasets, shared by the datasets and the
evaluation: errors name the file and say what is wrong.

* :func:`load_json`: missing file, invalid JSON (with line / column), a key
  that appears twice in one JSON object (``json`` would silently keep the
  last one, e.g. a duplicated expression id), a missing top-level key.
* :func:`check_videos`: the Ref-YouTube-VOS ``meta_expressions.json`` layout
  ``{"videos": {vid: {"frames": [str], "expressions": {exp_id: {...}}}}}``
  with the right types, frame names that are unique and that sort in
  temporal order.
* :func:`parse_obj_ids`: ``obj_id`` (str / int / list) -> ``list[int]``
  (palette ids 1..255).
"""
import json
import os.path as osp
import re
from collections import defaultdict
from typing import Dict, List, Optional

__all__ = ['load_json', 'check_videos', 'parse_obj_ids', 'check_frame_names']


def _no_duplicates(path: str):

    def hook(pairs):
        out = {}
        for k, v in pairs:
            if k in out:
                raise ValueError(f'{path}: key {k!r} appears twice in one JSON object '
                                 '(e.g. a duplicated video or expression id); JSON '
                                 'readers silently keep only the last one. Give every '
                                 'entry its own id')
            out[k] = v
        return out

    return hook


def load_json(path: str, required_key: Optional[str] = None):
    """Load a JSON file; errors name the file.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: invalid JSON (line / column given), a duplicated key in
            one object, or (``required_key``) not an object with that key.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'annotation file not found: {path}')
    try:
        with open(path, 'r', encoding='utf-8') as f:
            data = json.load(f, object_pairs_hook=_no_duplicates(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f'{path} is not valid JSON: {e}') from e
    if required_key is not None and (not isinstance(data, dict) or required_key not in data):
        raise ValueError(f'{path}: expected a JSON object with a {required_key!r} key')
    return data


def check_frame_names(frames, where: str) -> List[str]:
    """Frame names of a video, checked; returned sorted (temporal order).

    Frame names must be strings (``'00005'``), unique, and -- when numeric --
    of one length, so that sorting them as text is their temporal order
    (``'10'`` sorts before ``'9'``); the same holds for names with a
    common prefix (``'img_9'``, ``'img_10'``).
    """
    if not isinstance(frames, list):
        raise ValueError(f'{where}: "frames" must be a list of frame names, '
                         f'got {type(frames).__name__}')
    bad = [f for f in frames if not isinstance(f, str) or not f]
    if bad:
        raise ValueError(f'{where}: frame names must be non-empty strings '
                         f'such as "00005", got {bad[0]!r}')
    seen, dup = set(), []
    for f in frames:
        if f in seen:
            dup.append(f)
        seen.add(f)
    if dup:
        raise ValueError(f'{where}: frame {dup[0]!r} is listed twice in '
                         '"frames"')
    numbered = defaultdict(list)  # prefix -> names ending in a number
    for f in frames:
        m = re.fullmatch(r'(.*?)(\d+)', osp.splitext(f)[0])
        if m:
            numbered[m.group(1)].append(f)
    for names in numbered.values():
        if len({len(f) for f in names}) == 1:
            continue
        short = min(names, key=len)
        long_ = max(names, key=len)
        raise ValueError(f'{where}: numeric frame names of different lengths ({short!r}, '
                         f'{long_!r}) do not sort in temporal order; zero-pad them to one '
                         'length (e.g. "00009", "00010")')
    return sorted(frames)


def check_videos(data: dict, path: str, required=('frames', 'expressions')) -> Dict[str, dict]:
    """The ``videos`` of a ``meta_expressions.json``, with the types checked.

    Args:
        data (dict): The loaded file (see :func:`load_json`).
        path (str): The file, for messages.
        required (tuple[str]): Keys every video must have.

    Returns:
        dict: ``{video_id: {"frames": [...], "expressions": {...}}}``.
    """
    if not isinstance(data, dict) or 'videos' not in data:
        raise ValueError(f'{path}: expected a JSON object with a "videos" '
                         'key')
    videos = data['videos']
    if not isinstance(videos, dict):
        raise ValueError(f'{path}: "videos" must be an object video id -> '
                         f'entry, got {type(videos).__name__}')
    for vid, v in videos.items():
        where = f'{path}: video {vid!r}'
        if not isinstance(v, dict):
            raise ValueError(f'{where}: expected an object, got '
                             f'{type(v).__name__}')
        missing = [k for k in required if k not in v]
        if missing:
            raise ValueError(f'{where} lacks ' + ' and '.join(f'"{k}"' for k in missing))
        if 'frames' in v:
            check_frame_names(v['frames'], where)
        if 'expressions' in v:
            exps = v['expressions']
            if not isinstance(exps, dict):
                raise ValueError(f'{where}: "expressions" must be an object '
                                 'expression id -> entry, got '
                                 f'{type(exps).__name__}')
            for eid, e in exps.items():
                if not isinstance(e, dict):
                    raise ValueError(f'{where} expression {eid!r}: expected '
                                     f'an object, got {type(e).__name__}')
    return videos


def parse_obj_ids(value, where: str) -> List[int]:
    """``obj_id`` as str / int / list -> ``list[int]`` (1..255), with a clear
    error naming ``where``."""
    if value is None:
        return []
    values = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in values:
        if isinstance(v, bool) or isinstance(v, float) and not v.is_integer():
            raise ValueError(f'{where}: obj_id {v!r} is not an integer')
        try:
            i = int(v)
        except (TypeError, ValueError):
            raise ValueError(f'{where}: obj_id {v!r} is not an integer') \
                from None
        if not 0 < i < 256:
            raise ValueError(f'{where}: obj_id {i} outside 1..255 (palette '
                             'PNG ids)')
        out.append(i)
    return out

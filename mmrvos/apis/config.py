"""Configs as entry points take them: a path that may not be a config, ``--cfg-options`` that
may be mistyped, and the registry scope the config's types are looked up in."""
import difflib
import os.path as osp
from typing import Iterator, List, Optional, Sequence

from mmengine.config import Config

CONFIG_EXTS = ('.py', '.json', '.yml', '.yaml')
NEW_KEY_PREFIX = '+'


def add_projects_root(path: str) -> Optional[str]:
    """Put the folder holding ``projects/`` on ``sys.path`` when the config lives under a
    ``projects/<name>/`` folder, so its ``custom_imports`` (``'projects.<name>.<pkg>'``, as mmdet's
    projects) import without ``PYTHONPATH=.``. Returns that folder, or None."""
    import sys
    parts = osp.abspath(path).split(osp.sep)
    if 'projects' not in parts[:-2]:
        return None
    idx = len(parts) - 1 - parts[::-1].index('projects')
    root = osp.sep.join(parts[:idx]) or osp.sep
    if root not in sys.path:
        sys.path.insert(0, root)
    return root


def load_config(path: str, required: Sequence[str] = ('model', )) -> Config:
    """``Config.fromfile`` with clear errors.

    Raises:
        FileNotFoundError: no such file. ValueError: not a config (extension, syntax error,
            any failure to evaluate it, or a missing ``required`` entry), naming the file.
    """
    if not isinstance(path, str):
        raise ValueError(f'config must be a file path, got {type(path).__name__}')
    if not osp.isfile(path):
        raise FileNotFoundError(f'config not found: {path}')
    if not path.lower().endswith(CONFIG_EXTS):
        raise ValueError(f'{path}: not a config file (expected {", ".join(CONFIG_EXTS)})')
    add_projects_root(path)
    try:
        cfg = Config.fromfile(path)
    except Exception as err:  # syntax errors, bad JSON/YAML, failing imports, bad _base_
        msg = ' '.join(str(err).split()) or type(err).__name__
        raise ValueError(f'{path}: cannot read the config ({type(err).__name__}: '
                         f'{msg[:300]})') from err
    missing = [k for k in required if not isinstance(cfg.get(k), dict)]
    if missing:
        raise ValueError(f'{path}: not an mmrvos config: no {missing[0]!r} entry (a dict)')
    return cfg


def init_scope(cfg: Config) -> None:
    """Register mmrvos and make the config's ``default_scope`` (mmdet's when unset) the current
    registry scope, as ``mmdet.apis.init_detector`` does. Without it a fresh process looks
    ``TrackDataPreprocessor`` up in mmengine's registry and fails."""
    from mmengine.registry import init_default_scope

    import mmrvos  # noqa: F401  (registers into mmdet's registries)
    scope = cfg.get('default_scope', 'mmdet')
    if scope is not None:
        init_default_scope(scope)


def _children(node):
    if isinstance(node, dict):
        return {str(k): v for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return {str(i): v for i, v in enumerate(node)}
    return {}


def _resolve(cfg: Config, key: str):
    """(deepest existing node, its dotted path, whether the whole key exists)."""
    node, path = cfg._cfg_dict, []
    for part in key.split('.'):
        children = _children(node)
        if part not in children:
            return node, '.'.join(path), False
        node, path = children[part], path + [part]
    return node, key, True


def _paths(node, prefix: str = '', depth: int = 6) -> Iterator[str]:
    for k, v in _children(node).items():
        path = f'{prefix}.{k}' if prefix else k
        yield path
        if depth > 1:
            yield from _paths(v, path, depth - 1)


def nearest_key(cfg: Config, key: str) -> Optional[str]:
    """The existing key most like ``key``: among the children of its deepest existing parent
    first, then among all keys."""
    parent, parent_path, _ = _resolve(cfg, key)
    siblings = [f'{parent_path}.{k}' if parent_path else k for k in _children(parent)]
    for pool in (siblings, list(_paths(cfg._cfg_dict))):
        match = difflib.get_close_matches(key, pool, n=1, cutoff=0.6)
        if match:
            return match[0]
    return None


def merge_cfg_options(cfg: Config,
                      options: Optional[dict],
                      source: str = '--cfg-options') -> Config:
    """Merge ``key=value`` overrides into ``cfg`` in place, refusing keys that match nothing.

    Every dotted key must already exist in the config (list items by index, e.g.
    ``param_scheduler.1.end``), so that a typo such as ``train_cfg.max_iter=5`` is an error
    instead of an ignored entry. A key meant to be new is written with a leading ``+``
    (``+model.test_cfg.chunk_size=12``); a ``_delete_`` leaf is always accepted.

    Raises:
        ValueError: lists every unknown key with the nearest existing one.
    """
    if not options:
        return cfg
    merged, unknown = {}, []
    for key, value in options.items():
        if key.startswith(NEW_KEY_PREFIX):
            key = key[len(NEW_KEY_PREFIX):]
        elif not (_resolve(cfg, key)[2] or
                  (key.endswith('._delete_') and _resolve(cfg, key[:-len('._delete_')])[2])):
            unknown.append(key)
        merged[key] = value
    if unknown:
        lines: List[str] = []
        for key in unknown:
            near = nearest_key(cfg, key)
            lines.append(f'{key!r}' + (f' (did you mean {near!r}?)' if near else ''))
        raise ValueError(
            f'{source}: no such key in the config: {"; ".join(lines)}. Keys must exist in the '
            f'config; to add a new one, prefix it with {NEW_KEY_PREFIX!r} '
            f'(e.g. {NEW_KEY_PREFIX}{unknown[0]}=...)')
    try:
        cfg.merge_from_dict(merged)
    except (AttributeError, TypeError, KeyError, IndexError) as err:
        # e.g. an item of a list of numbers: mmengine only merges into lists of dicts
        raise ValueError(f'{source}: cannot apply {", ".join(merged)} ({err}); give a list '
                         'of numbers whole, e.g. model.backbone.depths=[2,2,6,2]') from err
    return cfg


__all__ = ['load_config', 'init_scope', 'merge_cfg_options', 'nearest_key']

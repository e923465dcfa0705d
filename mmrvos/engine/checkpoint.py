"""Checkpoint loading that never runs code from a file, for every scheme of mmengine.

mmengine's :class:`~mmengine.runner.checkpoint.CheckpointLoader` reads a checkpoint through a
*scheme* chosen by the name's prefix: a local path, ``http://`` / ``https://`` (downloaded into
torch's hub cache), ``torchvision://`` / ``modelzoo://``, ``open-mmlab://`` / ``openmmlab://``,
``mmcls://``, ``pavi://`` and ``s3://`` / ``petrel://`` (any fileio backend). Several of them
unpickle with ``weights_only=False`` (the URL schemes go through torch's
``load_state_dict_from_url``), so a pickled ``os.system`` in a downloaded file would run.

Here each scheme has a twin that finds the file exactly as mmengine does (same URL tables,
same hub-cache file names, same fileio backend) and then loads it with
``torch.load(..., weights_only=True)``: tensors, plain containers and the allow-list of
:mod:`mmrvos.compat` (numpy arrays, mmengine's message-hub state) only. Anything else is
refused with :class:`UnsafeCheckpointError`, which names the file or URL and the refused
class. ``weights_only`` is never switched off.

Nothing is replaced process-wide. mmrvos's own code paths use

* :func:`safe_load_checkpoint` -- one checkpoint, any scheme;
* :func:`safe_checkpoint_loaders` -- a context manager that swaps mmengine's scheme table for
  the safe twins while it is open (``mmengine.runner.load_checkpoint``, ``init_cfg=dict(
  type='Pretrained', ...)`` ...) and restores the original table on exit. The Runner of
  mmrvos (:class:`mmrvos.engine.RVOSRunner`) opens it around ``load_from`` / ``resume`` and
  the model's ``init_weights``.
"""
import io
import logging
import os
import os.path as osp
import pickle
import re
from collections import OrderedDict
from contextlib import contextmanager
from tempfile import TemporaryDirectory
from typing import Callable, Dict, Optional
from urllib.parse import urlparse

import torch
from mmengine.dist import get_dist_info
from mmengine.fileio import get_file_backend
from mmengine.logging import print_log
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

__all__ = [
    'UnsafeCheckpointError', 'load_checkpoint_file', 'load_bytes', 'load_url_safe',
    'load_from_local_safe', 'load_from_http_safe', 'load_from_pavi_safe', 'load_from_ceph_safe',
    'load_from_torchvision_safe', 'load_from_openmmlab_safe', 'load_from_mmcls_safe',
    'SAFE_SCHEMES', 'safe_load_checkpoint', 'safe_checkpoint_loaders'
]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a pickled object outside the allow-list."""


# --------------------------------------------------------------------------------------------
# torch.load(weights_only=True) with an error naming the source and the refused class
# --------------------------------------------------------------------------------------------
# torch names a refused global "GLOBAL module.name" (builtins without their module name)
_GLOBAL_RE = re.compile(r'GLOBAL\s+([\w\.]+)')
_HINT = ('Nothing of it has run. Only load checkpoints you trust; for a trusted file, allow-list '
         'its class with torch.serialization.add_safe_globals([...]) or re-save its tensors '
         'as a plain state dict (see docs/en/faq.md, "Refused checkpoints and pickles").')


def _refused_what(err: pickle.UnpicklingError) -> str:
    """What torch's weights-only unpickler refused, from its error text."""
    text = str(err)
    match = _GLOBAL_RE.search(text)
    if match:
        name = match.group(1)
        name = name if '.' in name else f'builtins.{name}'
        return f'the pickled object {name}, which is not on mmrvos\' allow-list'
    # another construct the unpickler rejects: keep torch's own reason, not its advice
    inner = text.split('WeightsUnpickler error:')[-1].split('Check the documentation')[0]
    inner = inner.replace('Weights only load failed.', '').strip()
    reason = inner.splitlines()[0].strip() if inner else type(err).__name__
    return f'data the weights-only unpickler refuses ({reason[:300]})'


def _refusal(source: str, err: pickle.UnpicklingError) -> UnsafeCheckpointError:
    """Turn torch's weights-only refusal into an error naming ``source`` and the class."""
    return UnsafeCheckpointError(
        f'Refusing to load checkpoint {source}: it contains {_refused_what(err)}. ' + _HINT)


def _torch_load(obj, source: str, map_location):
    try:
        return torch.load(obj, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if isinstance(err, UnsafeCheckpointError):
            raise
        raise _refusal(source, err) from err
    except (KeyError, EOFError, RuntimeError, ValueError) as err:  # truncated / not torch
        raise RuntimeError(f'{source} is not a readable torch checkpoint '
                           f'({type(err).__name__}: {err})') from err


def load_checkpoint_file(filename: str, map_location=None, source: Optional[str] = None):
    """``torch.load`` of a local file with ``weights_only=True``.

    Args:
        filename (str): local path (``~`` is expanded).
        map_location: as :func:`torch.load`.
        source (str, optional): how the user named the checkpoint (a URL ...) when that is
            not ``filename``; the error names both.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        UnsafeCheckpointError: the file pickles an object outside the allow-list.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    named = repr(filename) if source is None else f'{source!r} (file {filename!r})'
    return _torch_load(filename, named, map_location)


def load_bytes(data: bytes, source: str, map_location=None):
    """``torch.load`` of an in-memory checkpoint (fileio backends) with ``weights_only=True``."""
    with io.BytesIO(data) as buffer:
        return _torch_load(buffer, repr(source), map_location)


def _hub_cached_file(url: str, model_dir: Optional[str] = None) -> str:
    """Where :func:`torch.hub.load_state_dict_from_url` keeps ``url`` (``<hub>/checkpoints/``
    and the URL's base name)."""
    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    return osp.join(model_dir, osp.basename(urlparse(url).path))


def load_url_safe(url: str,
                  model_dir: Optional[str] = None,
                  map_location=None,
                  progress: bool = True):
    """mmengine's ``load_url`` (torch's ``load_state_dict_from_url``: download once into the
    hub cache, same file name) with ``weights_only=True``."""
    try:
        return torch.hub.load_state_dict_from_url(
            url,
            model_dir=model_dir,
            map_location=map_location,
            progress=progress,
            weights_only=True)
    except pickle.UnpicklingError as err:
        named = f'{url!r} (cached as {_hub_cached_file(url, model_dir)!r})'
        raise _refusal(named, err) from err


# --------------------------------------------------------------------------------------------
# One safe twin per mmengine scheme (same arguments, same file lookup)
# --------------------------------------------------------------------------------------------
def load_from_local_safe(filename, map_location=None):
    """Local path (mmengine's ``load_from_local``)."""
    return load_checkpoint_file(filename, map_location)


def load_from_http_safe(filename, map_location=None, model_dir=None, progress=os.isatty(0)):
    """``http://`` / ``https://`` (mmengine's ``load_from_http``): rank 0 downloads first."""
    rank, world_size = get_dist_info()
    checkpoint = None
    if rank == 0:
        checkpoint = load_url_safe(filename, model_dir, map_location, progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            checkpoint = load_url_safe(filename, model_dir, map_location, progress)
    return checkpoint


def load_from_pavi_safe(filename, map_location=None):
    """``pavi://`` (mmengine's ``load_from_pavi``)."""
    assert filename.startswith('pavi://'), \
        f'Expected filename startswith `pavi://`, but get {filename}'
    try:
        from pavi import modelcloud
    except ImportError:
        raise ImportError('Please install pavi to load checkpoint from modelcloud.')
    model = modelcloud.get(filename[7:])
    with TemporaryDirectory() as tmp_dir:
        downloaded_file = osp.join(tmp_dir, model.name)
        model.download(downloaded_file)
        return load_checkpoint_file(downloaded_file, map_location, source=filename)


def load_from_ceph_safe(filename, map_location=None, backend='petrel'):
    """``s3://`` / ``petrel://`` and ``<name>:s3://`` (mmengine's ``load_from_ceph``):
    bytes from the fileio backend."""
    file_backend = get_file_backend(filename, backend_args={'backend': backend})
    return load_bytes(file_backend.get(filename), filename, map_location)


def _torchvision_model_urls() -> dict:
    """mmengine's ``torchvision://`` table; without torchvision installed, the part of it
    mmengine ships (``hub/torchvision_0.12.json``: ``resnet50`` ...)."""
    try:
        return mmengine_checkpoint.get_torchvision_models()
    except ImportError:
        import mmengine
        return mmengine.load(osp.join(mmengine.__path__[0], 'hub', 'torchvision_0.12.json'))


def load_from_torchvision_safe(filename, map_location=None):
    """``torchvision://NAME`` / ``modelzoo://NAME`` (mmengine's URL table)."""
    model_urls = _torchvision_model_urls()
    if filename.startswith('modelzoo://'):
        print_log(
            'The URL scheme of "modelzoo://" is deprecated, please '
            'use "torchvision://" instead',
            logger='current',
            level=logging.WARNING)
        model_name = filename[11:]
    else:
        model_name = filename[14:]
    return load_from_http_safe(model_urls[model_name], map_location=map_location)


def load_from_openmmlab_safe(filename, map_location=None):
    """``open-mmlab://NAME`` / ``openmmlab://NAME`` (mmengine's tables, incl. the user's
    ``$MMENGINE_HOME/open_mmlab.json``; relative entries live under ``$MMENGINE_HOME``)."""
    model_urls = mmengine_checkpoint.get_external_models()
    prefix_str = 'open-mmlab://'
    if filename.startswith(prefix_str):
        model_name = filename[13:]
    else:
        model_name = filename[12:]
        prefix_str = 'openmmlab://'
    deprecated_urls = mmengine_checkpoint.get_deprecated_model_names()
    if model_name in deprecated_urls:
        print_log(
            f'{prefix_str}{model_name} is deprecated in favor '
            f'of {prefix_str}{deprecated_urls[model_name]}',
            logger='current',
            level=logging.WARNING)
        model_name = deprecated_urls[model_name]
    model_url = model_urls[model_name]
    if model_url.startswith(('http://', 'https://')):
        return load_from_http_safe(model_url, map_location=map_location)
    local = osp.join(mmengine_checkpoint._get_mmengine_home(), model_url)
    return load_checkpoint_file(local, map_location, source=filename)


def load_from_mmcls_safe(filename, map_location=None):
    """``mmcls://NAME`` (mmengine's table; keeps the ``backbone.`` weights as mmengine does)."""
    model_urls = mmengine_checkpoint.get_mmcls_models()
    checkpoint = load_from_http_safe(model_urls[filename[8:]], map_location=map_location)
    return mmengine_checkpoint._process_mmcls_checkpoint(checkpoint)


def _sorted_schemes(schemes: Dict[str, Callable]) -> 'OrderedDict[str, Callable]':
    """mmengine's order: reverse-sorted prefixes, so longer ones are matched first."""
    return OrderedDict(sorted(schemes.items(), key=lambda t: t[0], reverse=True))


#: prefix (a regular expression matched at the start of the name, as in mmengine) -> loader
SAFE_SCHEMES = _sorted_schemes({
    '': load_from_local_safe,
    'http://': load_from_http_safe,
    'https://': load_from_http_safe,
    'pavi://': load_from_pavi_safe,
    r'(\S+\:)?s3://': load_from_ceph_safe,
    r'(\S+\:)?petrel://': load_from_ceph_safe,
    'modelzoo://': load_from_torchvision_safe,
    'torchvision://': load_from_torchvision_safe,
    'open-mmlab://': load_from_openmmlab_safe,
    'openmmlab://': load_from_openmmlab_safe,
    'mmcls://': load_from_mmcls_safe,
})


def _match(schemes: Dict[str, Callable], filename: str) -> Callable:
    for prefix, loader in schemes.items():
        if re.match(prefix, filename) is not None:
            return loader
    return schemes['']


def safe_load_checkpoint(filename: str, map_location=None, logger='current'):
    """Load a checkpoint named as mmengine names them (path, URL, ``torchvision://`` ...)
    with ``weights_only=True``.

    Raises:
        UnsafeCheckpointError: the checkpoint pickles an object outside the allow-list.
        FileNotFoundError: a local file does not exist.
    """
    loader = _match(SAFE_SCHEMES, filename)
    print_log(
        f'Loads checkpoint by {loader.__name__[10:]} backend from path: {filename}', logger=logger)
    return loader(filename, map_location)


@contextmanager
def safe_checkpoint_loaders():
    """Swap mmengine's ``CheckpointLoader`` schemes for the safe twins while open.

    Every prefix mmengine defines is served by its twin in :data:`SAFE_SCHEMES`; schemes
    other code registered under other prefixes are kept. On exit the original table comes
    back (plus any scheme registered meanwhile under a new prefix). Contexts nest.
    """
    original = CheckpointLoader._schemes
    safe = OrderedDict(original)
    safe.update(SAFE_SCHEMES)
    safe = _sorted_schemes(safe)
    CheckpointLoader._schemes = safe
    try:
        yield
    finally:
        current = CheckpointLoader._schemes
        added = {p: f for p, f in current.items() if p not in safe}
        restored = OrderedDict(original)
        restored.update(added)
        CheckpointLoader._schemes = _sorted_schemes(restored) if added else original

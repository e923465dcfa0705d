"""The one place where mmrvos makes the OpenMMLab stack work on new torch / numpy / transformers.

Nothing here edits or patches installed files. Everything uses the extension points the
libraries offer:

* **Checkpoints under ``weights_only=True``** (torch >= 2.6 loads that way by default).
  mmengine 0.10.7 writes message-hub state holding :class:`~mmengine.logging.HistoryBuffer`
  objects and numpy arrays, so a plain ``torch.load`` refuses its own checkpoints on resume.

  - :func:`allow_mmengine_checkpoint_globals` allow-lists exactly the numpy reconstruction
    globals mmengine's state needs, plus one small rebuild function of ours.
  - ``HistoryBuffer`` is pickled *by value* through a ``copyreg`` reducer
    (:func:`_reduce_history_buffer`) so that no bound method / ``getattr`` ever enters a
    checkpoint: allow-listing ``builtins.getattr`` would reopen arbitrary code execution.
  - :func:`load_from_local_safe` is registered as mmengine's local checkpoint scheme. It loads
    with ``weights_only=True`` and turns torch's refusal into :class:`UnsafeCheckpointError`
    naming the file and the refused class. ``weights_only`` is never switched off.

* **BERT with Grounding DINO's 3-D sub-sentence mask.** transformers >= 4.48 run BERT through
  SDPA by default, whose mask preparation rejects mmdet's ``(bs, L, L)`` attention mask.
  :class:`EagerBertModel` is mmdet's ``BertModel`` with the Hugging Face model built with
  ``attn_implementation='eager'``; it is registered in mmdet's ``MODELS`` under its own name and
  (``force=True``) under ``'BertModel'``, so stock mmdet Grounding DINO configs work as well.
"""
import copyreg
import os.path as osp
import pickle
import re
from collections import OrderedDict

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

__all__ = [
    'UnsafeCheckpointError', 'allow_mmengine_checkpoint_globals',
    'load_from_local_safe', 'EagerBertModel', 'apply'
]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a pickled object outside the allow-list."""


# --------------------------------------------------------------------------------------------
# HistoryBuffer by value
# --------------------------------------------------------------------------------------------
def rebuild_history_buffer(log_history: np.ndarray, count_history: np.ndarray,
                           max_length: int) -> HistoryBuffer:
    """Rebuild a :class:`HistoryBuffer` from its arrays (allow-listed for unpickling)."""
    return HistoryBuffer(log_history.tolist(), count_history.tolist(), int(max_length))


def _reduce_history_buffer(buf: HistoryBuffer):
    return rebuild_history_buffer, (np.asarray(buf._log_history),
                                    np.asarray(buf._count_history),
                                    int(buf.max_length))


def _numpy_globals() -> list:
    """Numpy objects that pickled arrays and scalars reference (numpy 1.x and 2.x names)."""
    found = [np.ndarray, np.dtype]
    for modname in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        try:
            mod = __import__(modname, fromlist=['_reconstruct', 'scalar'])
        except ImportError:
            continue
        found += [mod._reconstruct, mod.scalar]
    # dtype classes (numpy >= 1.25 pickles dtypes through them)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in dir(dtypes):
            obj = getattr(dtypes, name)
            if isinstance(obj, type) and issubclass(obj, np.dtype):
                found.append(obj)
    return found


def allow_mmengine_checkpoint_globals() -> list:
    """Allow-list the globals of mmengine checkpoints for ``torch.load(weights_only=True)``.

    Returns:
        list: the objects that were allow-listed.
    """
    safe = _numpy_globals() + [rebuild_history_buffer, OrderedDict]
    torch.serialization.add_safe_globals(safe)
    return safe


# --------------------------------------------------------------------------------------------
# Local checkpoint loading with a clear refusal
# --------------------------------------------------------------------------------------------
_GLOBAL_RE = re.compile(r'(?:Unsupported global: GLOBAL|global|class)\s+([\w\.]+)')


def load_checkpoint_file(filename: str, map_location=None):
    """``torch.load`` with ``weights_only=True`` and an error that names file and class.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        UnsafeCheckpointError: the file pickles an object outside the allow-list.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        match = _GLOBAL_RE.search(text)
        what = match.group(1) if match else 'an object outside the allow-list'
        raise UnsafeCheckpointError(
            f'Refusing to load checkpoint {filename!r}: it contains the pickled '
            f'object {what}, which is not on mmrvos\' allow-list of safe classes. '
            'Only load checkpoints you trust; if you do, add the class with '
            'torch.serialization.add_safe_globals([...]) before loading.') from err


def load_from_local_safe(filename, map_location):
    """mmengine ``CheckpointLoader`` scheme for local paths (see module docstring)."""
    return load_checkpoint_file(filename, map_location)


# --------------------------------------------------------------------------------------------
# BERT in eager attention
# --------------------------------------------------------------------------------------------
def _build_eager_bert():
    from mmdet.models.language_models import bert as mmdet_bert
    from mmdet.registry import MODELS

    class EagerBertEncoder(mmdet_bert.BertEncoder):
        """mmdet's ``BertEncoder`` whose Hugging Face BERT runs eager attention."""

        def __init__(self, name: str, add_pooling_layer: bool = False,
                     num_layers_of_embedded: int = 1, use_checkpoint: bool = False):
            torch.nn.Module.__init__(self)
            from transformers import BertConfig
            from transformers import BertModel as HFBertModel
            config = BertConfig.from_pretrained(name)
            config.gradient_checkpointing = use_checkpoint
            self.model = HFBertModel.from_pretrained(
                name, add_pooling_layer=add_pooling_layer, config=config,
                attn_implementation='eager')
            self.language_dim = config.hidden_size
            self.num_layers_of_embedded = num_layers_of_embedded

    class EagerBertModel(mmdet_bert.BertModel):
        """mmdet's ``BertModel`` (same arguments) working with 3-D sub-sentence masks."""

        def __init__(self, name: str = 'bert-base-uncased', *args, **kwargs):
            add_pooling_layer = kwargs.get('add_pooling_layer', False)
            num_layers_of_embedded = kwargs.get('num_layers_of_embedded', 1)
            use_checkpoint = kwargs.get('use_checkpoint', False)
            super().__init__(name, *args, **kwargs)
            # replace the SDPA body built by the parent with the eager one
            self.language_backbone.body = EagerBertEncoder(
                name, add_pooling_layer=add_pooling_layer,
                num_layers_of_embedded=num_layers_of_embedded,
                use_checkpoint=use_checkpoint)

    MODELS.register_module(name='EagerBertModel', module=EagerBertModel, force=True)
    MODELS.register_module(name='BertModel', module=EagerBertModel, force=True)
    return EagerBertModel


EagerBertModel = None
_APPLIED = False


def apply() -> None:
    """Install all fixes (idempotent). Called by ``import mmrvos``."""
    global EagerBertModel, _APPLIED
    if _APPLIED:
        return
    copyreg.pickle(HistoryBuffer, _reduce_history_buffer)
    allow_mmengine_checkpoint_globals()
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_safe, force=True)
    EagerBertModel = _build_eager_bert()
    _APPLIED = True

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
  - Loading itself lives in :mod:`mmrvos.engine.checkpoint` (every mmengine scheme with
    ``weights_only=True``, :class:`UnsafeCheckpointError` naming file and refused class).
    ``import mmrvos`` does **not** replace mmengine's checkpoint loaders: mmrvos's own paths
    (``RVOSRunner``, ``init_rvos_model``, the converters) use the safe loaders explicitly.
    ``UnsafeCheckpointError`` and ``load_checkpoint_file`` stay importable from here.

* **BERT with Grounding DINO's 3-D sub-sentence mask.** transformers >= 4.48 run BERT through
  SDPA by default, whose mask preparation rejects mmdet's ``(bs, L, L)`` attention mask.
  :class:`EagerBertModel` is mmdet's ``BertModel`` with the Hugging Face model built with
  ``attn_implementation='eager'``; it is registered in mmdet's ``MODELS`` under its own name and
  (``force=True``) under ``'BertModel'``, so stock mmdet Grounding DINO configs work as well.
"""
import copyreg
from collections import OrderedDict

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

__all__ = [
    'UnsafeCheckpointError', 'allow_mmengine_checkpoint_globals',
    'load_checkpoint_file', 'load_from_local_safe', 'EagerBertModel', 'apply'
]


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
# Backwards-compatible names of the safe loading (now in mmrvos.engine.checkpoint)
# --------------------------------------------------------------------------------------------
_MOVED = ('UnsafeCheckpointError', 'load_checkpoint_file', 'load_from_local_safe')


def __getattr__(name: str):
    """``from mmrvos.compat import UnsafeCheckpointError`` keeps working (PEP 562). Imported
    lazily: this module is imported before the rest of the package, and ``mmrvos.engine``
    imports the models."""
    if name in _MOVED:
        from .engine import checkpoint
        return getattr(checkpoint, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


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
    EagerBertModel = _build_eager_bert()
    _APPLIED = True

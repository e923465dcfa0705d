"""The one place where mmrvos makes the OpenMMLab stack work on new torch / numpy / transformers.

Nothing here edits or patches installed files, and ``import mmrvos`` replaces nothing of mmdet
or mmengine: every registry entry, every checkpoint loader and every function keeps pointing to
what it was before (``tests/foundation/test_import_side_effects.py`` checks it in a fresh
interpreter). What ``import mmrvos`` *adds* process-wide is exactly this:

* **Checkpoints under ``weights_only=True``** (torch >= 2.6 loads that way by default).
  mmengine 0.10.7 writes message-hub state holding :class:`~mmengine.logging.HistoryBuffer`
  objects and numpy arrays, so a plain ``torch.load`` refuses mmengine's own checkpoints on
  resume (broken stack code, with or without mmrvos).

  - :func:`allow_mmengine_checkpoint_globals` allow-lists (``torch.serialization.
    add_safe_globals``) exactly the numpy reconstruction globals and dtypes, ``OrderedDict``,
    ``HistoryBuffer`` itself and the rebuild function older mmrvos checkpoints reference. Data
    types only: nothing that can call an arbitrary function.
  - ``HistoryBuffer`` is pickled *by value* through a ``copyreg`` reducer
    (:func:`_reduce_history_buffer`: ``HistoryBuffer(log_history, count_history,
    max_length)``), instead of its default state, whose ``statistics_methods`` entry pickles
    bound methods through ``builtins.getattr`` (allow-listing ``getattr`` would reopen
    arbitrary code execution). The reduced form names only mmengine's class, so such a
    checkpoint loads wherever mmengine is installed, without mmrvos; a copy (``deepcopy``)
    holds the same arrays and ``max_length``.
  - Loading itself lives in :mod:`mmrvos.engine.checkpoint` (every mmengine scheme with
    ``weights_only=True``, :class:`UnsafeCheckpointError` naming file and refused class).
    ``import mmrvos`` does **not** replace mmengine's checkpoint loaders: mmrvos's own paths
    (``RVOSRunner``, ``init_rvos_model``, the converters) use the safe loaders explicitly.
    ``UnsafeCheckpointError`` and ``load_checkpoint_file`` stay importable from here.

* **BERT with Grounding DINO's 3-D sub-sentence mask.** Some transformers releases of the
  supported range (``>=4.40,<5``; e.g. 4.41) build BERT with SDPA attention, whose mask
  preparation rejects mmdet's ``(bs, L, L)`` attention mask (``ValueError: too many values to
  unpack``); 4.48 and 4.57 accept it and give the same features as eager attention.
  :class:`EagerBertModel` is mmdet's ``BertModel`` with the Hugging Face model built with
  ``attn_implementation='eager'``, which works on all of them. It is registered in mmdet's
  ``MODELS`` under its **own name** only (``type='EagerBertModel'``, used by mmrvos's
  configs); mmdet's ``BertModel`` stays mmdet's class.
"""
import copyreg
from collections import OrderedDict

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

__all__ = [  # noqa: F822 (three names resolved lazily by __getattr__, PEP 562)
    'UnsafeCheckpointError', 'allow_mmengine_checkpoint_globals', 'load_checkpoint_file',
    'load_from_local_safe', 'EagerBertModel', 'apply'
]


# --------------------------------------------------------------------------------------------
# HistoryBuffer by value
# --------------------------------------------------------------------------------------------
def rebuild_history_buffer(log_history: np.ndarray, count_history: np.ndarray,
                           max_length: int) -> HistoryBuffer:
    """Rebuild a :class:`HistoryBuffer` from its arrays.

    Checkpoints written by mmrvos <= 0.1.0 reference this function; it stays allow-listed so
    that they keep loading. New checkpoints reference ``HistoryBuffer`` itself.
    """
    return HistoryBuffer(log_history.tolist(), count_history.tolist(), int(max_length))


def _reduce_history_buffer(buf: HistoryBuffer):
    """``HistoryBuffer(log_history (K, ), count_history (K, ), max_length)``: the pickle names
    mmengine's class and numpy arrays only (same dtypes, same values)."""
    return HistoryBuffer, (np.asarray(buf._log_history), np.asarray(buf._count_history),
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
    safe = _numpy_globals() + [HistoryBuffer, rebuild_history_buffer, OrderedDict]
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
    """Define :class:`EagerBertModel` and register it in mmdet's ``MODELS`` under its own name.

    Returns:
        type: the registered class (the one already registered by an earlier import of this
        module, if any).

    Raises:
        RuntimeError: another package registered a different ``EagerBertModel``.
    """
    from mmdet.models.language_models import bert as mmdet_bert
    from mmdet.registry import MODELS

    class EagerBertEncoder(mmdet_bert.BertEncoder):
        """mmdet's ``BertEncoder`` whose Hugging Face BERT runs eager attention."""

        def __init__(self,
                     name: str,
                     add_pooling_layer: bool = False,
                     num_layers_of_embedded: int = 1,
                     use_checkpoint: bool = False):
            torch.nn.Module.__init__(self)
            from transformers import BertConfig
            from transformers import BertModel as HFBertModel
            config = BertConfig.from_pretrained(name)
            config.gradient_checkpointing = use_checkpoint
            self.model = HFBertModel.from_pretrained(
                name,
                add_pooling_layer=add_pooling_layer,
                config=config,
                attn_implementation='eager')
            self.language_dim = config.hidden_size
            self.num_layers_of_embedded = num_layers_of_embedded

    class EagerBertModel(mmdet_bert.BertModel):
        """mmdet's ``BertModel`` (same arguments, same state-dict keys) working with the
        ``(bs, L, L)`` sub-sentence attention masks of Grounding DINO.

        ``forward(captions)`` returns mmdet's dict: ``embedded`` (bs, L, C), ``masks``
        (bs, L, L) with sub-sentences, ``hidden`` (bs, L, C), ``text_token_mask`` (bs, L)
        ... Config: ``language_model=dict(type='EagerBertModel', name=..., ...)``.
        """

        def __init__(self, name: str = 'bert-base-uncased', *args, **kwargs):
            add_pooling_layer = kwargs.get('add_pooling_layer', False)
            num_layers_of_embedded = kwargs.get('num_layers_of_embedded', 1)
            use_checkpoint = kwargs.get('use_checkpoint', False)
            super().__init__(name, *args, **kwargs)
            # replace the SDPA body built by the parent with the eager one
            self.language_backbone.body = EagerBertEncoder(
                name,
                add_pooling_layer=add_pooling_layer,
                num_layers_of_embedded=num_layers_of_embedded,
                use_checkpoint=use_checkpoint)

    EagerBertModel.__module__ = __name__
    EagerBertModel.__qualname__ = 'EagerBertModel'
    existing = MODELS.module_dict.get('EagerBertModel')
    if existing is not None:
        if getattr(existing, '__module__', None) == __name__:
            return existing  # this module was imported (reloaded) before
        raise RuntimeError(
            "mmdet's MODELS already holds an 'EagerBertModel' from "
            f'{existing.__module__}; mmrvos registers its eager BERT under that name. '
            'Remove the other registration or import mmrvos first.')
    MODELS.register_module(name='EagerBertModel', module=EagerBertModel)
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

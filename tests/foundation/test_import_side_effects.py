"""``import mmrvos`` changes nothing of mmdet's or mmengine's behaviour for other code.

Checked in a fresh interpreter (a subprocess, without this suite's conftest, which sets mmdet's
default scope and imports mmrvos in-process): everything is snapshot after mmdet and mmengine
are fully imported, then ``import mmrvos`` runs, then the snapshot is compared. Reference: the
objects mmdet / mmengine / torch / transformers themselves define.
"""
import json
import os
import subprocess
import sys

import pytest

from rvos_test_utils import REPO_ROOT, TINY_BERT

_PROBE = r'''
import copyreg, json, pickle, sys, io
import torch
import transformers
import mmengine.registry as mme_reg
import mmdet.registry as mmd_reg
from mmengine.registry import Registry
from mmdet.utils import register_all_modules
register_all_modules(init_default_scope=False)  # imports every mmdet module
import mmdet.models.language_models as mmdet_lm
import mmdet.models.language_models.bert as mmdet_bert
from mmengine.logging import HistoryBuffer
from mmengine.runner import Runner
from mmengine.runner import checkpoint as mme_ckpt
from mmengine.runner.checkpoint import CheckpointLoader

TINY_BERT = sys.argv[1]


def registries():
    out = {}
    for owner in (mme_reg, mmd_reg):
        for name in dir(owner):
            reg = getattr(owner, name)
            if isinstance(reg, Registry):
                out[f'{owner.__name__}.{name}'] = dict(reg.module_dict)
    return out


def functions():
    return {
        'mmdet.models.language_models.BertModel': mmdet_lm.BertModel,
        'mmdet...bert.BertModel': mmdet_bert.BertModel,
        'mmdet...bert.BertEncoder': mmdet_bert.BertEncoder,
        'mmdet...bert.BertModel.__init__': mmdet_bert.BertModel.__init__,
        'mmdet...bert.BertModel.forward': mmdet_bert.BertModel.forward,
        'mmdet...bert.BertEncoder.__init__': mmdet_bert.BertEncoder.__init__,
        'transformers.BertModel': transformers.BertModel,
        'torch.load': torch.load,
        'torch.save': torch.save,
        'torch.serialization.load': torch.serialization.load,
        'CheckpointLoader.load_checkpoint': CheckpointLoader.__dict__['load_checkpoint'],
        'CheckpointLoader._get_checkpoint_loader':
            CheckpointLoader.__dict__['_get_checkpoint_loader'],
        'mmengine.runner.checkpoint.load_from_local': mme_ckpt.load_from_local,
        'mmengine.runner.checkpoint._load_checkpoint': mme_ckpt._load_checkpoint,
        'mmengine.runner.checkpoint.load_checkpoint': mme_ckpt.load_checkpoint,
        'mmengine.runner.checkpoint.save_checkpoint': mme_ckpt.save_checkpoint,
        'Runner.load_checkpoint': Runner.load_checkpoint,
        'Runner.resume': Runner.resume,
        'Runner.save_checkpoint': Runner.save_checkpoint,
        'HistoryBuffer.__getstate__': HistoryBuffer.__getstate__,
        'HistoryBuffer.__setstate__': HistoryBuffer.__setstate__,
        'HistoryBuffer.__init__': HistoryBuffer.__init__,
    }


def bert_attention():
    bert = mmd_reg.MODELS.build(dict(type='BertModel', name=TINY_BERT, pad_to_max=False))
    return type(bert), bert.language_backbone.body.model.config._attn_implementation


reg0, fn0 = registries(), functions()
schemes0 = list(CheckpointLoader._schemes.items())
dispatch0 = dict(copyreg.dispatch_table)
safe0 = set(map(id, torch.serialization.get_safe_globals()))
bert0 = bert_attention()

import mmrvos  # noqa: E402,F401

report = dict(changed=[], foreign_new=[], functions=[], schemes_same=None,
              dispatch_new=[], safe_new=[], bert=None, bert_before=None, eager=None,
              history_pickle_mentions_mmrvos=None, history_roundtrip=None)
reg1 = registries()
for reg_name, before in reg0.items():
    after = reg1[reg_name]
    for key, cls in before.items():
        if after.get(key) is not cls:
            report['changed'].append(f'{reg_name}[{key!r}]: {cls!r} -> {after.get(key)!r}')
    for key in set(after) - set(before):
        mod = getattr(after[key], '__module__', '')
        if not mod.startswith('mmrvos'):
            report['foreign_new'].append(f'{reg_name}[{key!r}] from {mod}')
fn1 = functions()
report['functions'] = [k for k in fn0 if fn1[k] is not fn0[k]]
report['schemes_same'] = list(CheckpointLoader._schemes.items()) == schemes0
report['dispatch_new'] = [getattr(k, '__qualname__', repr(k))
                          for k in copyreg.dispatch_table if k not in dispatch0]
report['safe_new'] = sorted(f'{getattr(o, "__module__", "?")}.{getattr(o, "__qualname__", o)}'
                            for o in torch.serialization.get_safe_globals()
                            if id(o) not in safe0)
got = mmd_reg.MODELS.get('BertModel')
report['bert_is_mmdet'] = got is mmdet_bert.BertModel
bert1 = bert_attention()
report['bert_same_class_and_attention'] = bert1 == bert0
report['bert_attention'] = bert1[1]
eager = mmd_reg.MODELS.get('EagerBertModel')
report['eager'] = f'{eager.__module__}.{eager.__qualname__}'

buf = HistoryBuffer([1.5, 2.5], [1, 2], max_length=7)
data = pickle.dumps(dict(hub=buf), protocol=2)
report['history_pickle_mentions_mmrvos'] = b'mmrvos' in data
stream = io.BytesIO()
torch.save(dict(hub=buf), stream)
stream.seek(0)
back = torch.load(stream, weights_only=True)['hub']
summary = lambda b: [b._log_history.tolist(), b._count_history.tolist(), b.max_length,
                     str(b._log_history.dtype), str(b._count_history.dtype),
                     float(b.mean()), float(b.current())]
report['history_roundtrip'] = [summary(buf), summary(back)]
print('REPORT ' + json.dumps(report))
'''


@pytest.fixture(scope='module')
def report():
    """The probe's findings (one fresh interpreter for both tests)."""
    env = dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1')
    proc = subprocess.run([sys.executable, '-c', _PROBE, TINY_BERT],
                          cwd=REPO_ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith('REPORT ')][-1]
    return json.loads(line[len('REPORT '):])


def test_import_mmrvos_replaces_nothing_of_mmdet_and_mmengine(report):
    # every registry entry of mmdet and mmengine maps to the very same class afterwards,
    # and what was added comes from mmrvos
    assert report['changed'] == []
    assert report['foreign_new'] == []
    # no function / class of mmdet, mmengine, torch or transformers was swapped
    assert report['functions'] == []
    # mmengine's checkpoint loaders: same prefixes, same functions, same order
    assert report['schemes_same'] is True
    # mmdet's BertModel stays mmdet's (built from the registry: same class, same attention)
    assert report['bert_is_mmdet'] is True
    assert report['bert_same_class_and_attention'] is True
    # the eager BERT lives under its own name
    assert report['eager'] == 'mmrvos.compat.EagerBertModel'


def test_import_mmrvos_only_adds_the_documented_checkpoint_allow_list(report):
    # copyreg: HistoryBuffer only (pickled by value, as mmengine's own class)
    assert report['dispatch_new'] == ['HistoryBuffer']
    # allow-list: numpy data types, OrderedDict, HistoryBuffer and the legacy rebuild function;
    # nothing that calls arbitrary functions
    new = report['safe_new']
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in new
    assert 'mmrvos.compat.rebuild_history_buffer' in new
    others = [
        n for n in new
        if n not in ('mmengine.logging.history_buffer.HistoryBuffer',
                     'mmrvos.compat.rebuild_history_buffer', 'collections.OrderedDict')
    ]
    assert others and all(n.startswith('numpy') for n in others), others
    assert not any(
        bad in n for n in new for bad in ('getattr', 'eval', 'exec', 'system', 'import', 'apply'))
    # a checkpoint written in an mmrvos process names no mmrvos object (loads without it) and
    # round-trips under weights_only=True with the same values, dtype and statistics
    assert report['history_pickle_mentions_mmrvos'] is False
    before, after = report['history_roundtrip']
    assert after == before
    assert after[:3] == [[1.5, 2.5], [1, 2], 7]


def test_a_foreign_eager_bert_registration_is_not_replaced():
    """Another package's ``EagerBertModel`` in mmdet's registry: ``import mmrvos`` refuses to
    replace it, naming the other module, instead of overwriting it silently."""
    code = ('import torch\n'
            'from mmdet.registry import MODELS\n'
            "@MODELS.register_module(name='EagerBertModel')\n"
            'class Foreign(torch.nn.Module):\n'
            '    pass\n'
            'try:\n'
            '    import mmrvos\n'
            'except RuntimeError as err:\n'
            "    print('REFUSED', err)\n"
            "print('KEPT', MODELS.get('EagerBertModel') is Foreign)\n")
    env = dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1')
    proc = subprocess.run([sys.executable, '-c', code],
                          cwd=REPO_ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'REFUSED' in proc.stdout and "'EagerBertModel'" in proc.stdout
    assert '__main__' in proc.stdout  # the module that registered the other class
    assert 'KEPT True' in proc.stdout

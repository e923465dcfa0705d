"""No pickle from outside runs code: every checkpoint scheme, the entry points, the converters.

A hostile file pickles a call (``os.system('touch MARKER')`` or ``exec(...)`` writing MARKER);
unpickling it with ``weights_only=False`` / plain ``pickle`` would create MARKER. Every path
must refuse it with an error naming the file (or URL) and the refused global, leave no
MARKER, and still load a benign file.
"""
import functools
import http.server
import itertools
import json
import os
import os.path as osp
import pickle
import struct
import subprocess
import sys
import threading
import types
from collections import OrderedDict

import mmengine
import pytest
import torch
from mmengine.runner import checkpoint as mm_ckpt
from mmengine.runner.checkpoint import CheckpointLoader

from mmrvos.engine.checkpoint import (UnsafeCheckpointError, safe_checkpoint_loaders,
                                      safe_load_checkpoint)
from rvos_test_utils import REPO_ROOT, TINY_CONFIG

TOY_CONFIG = osp.join(REPO_ROOT, 'configs', 'referdino', 'referdino_tiny_1xb2_toy-rvos.py')


# --------------------------------------------------------------------------------------------
# hostile and benign files
# --------------------------------------------------------------------------------------------
class Call:
    """Unpickles as ``func(*args)``: what a hostile checkpoint holds."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payload(kind: str, marker: str):
    """(object that creates ``marker`` when unpickled, global name torch reports)."""
    if kind == 'system':
        return Call(os.system, (f'touch {marker}', )), f'{os.system.__module__}.system'
    return Call(exec, (f'open({marker!r}, "w").write("ran")', )), 'builtins.exec'


def write_hostile(path: str, kind: str = 'system', legacy: bool = False) -> tuple:
    """A torch checkpoint (zip, or legacy non-zip) whose ``meta`` is a hostile call.

    Returns:
        tuple: (path, refused global name, marker path)
    """
    marker = path + '.MARKER'
    obj, name = _payload(kind, marker)
    ckpt = dict(state_dict=OrderedDict(w=torch.ones(2)), meta=obj)
    torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
    assert not osp.exists(marker)
    return path, name, marker


def write_benign(path: str) -> torch.Tensor:
    weight = torch.arange(4, dtype=torch.float32)
    torch.save(dict(state_dict=OrderedDict(w=weight), meta=dict(iter=3, note='plain')), path)
    return weight


def assert_refused(err, named: str, refused: str, marker: str) -> None:
    msg = str(err.value) if hasattr(err, 'value') else str(err)
    assert named in msg, msg
    assert refused in msg, msg
    assert not osp.exists(marker), 'the hostile pickle ran'


HOSTILE_VARIANTS = [('system', False), ('system', True), ('exec', False), ('exec', True)]


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """torch's hub dir under tmp_path (where ``http(s)://`` checkpoints are cached)."""
    hub_dir = str(tmp_path / 'hub')
    monkeypatch.setattr(torch.hub, '_hub_dir', hub_dir)
    os.makedirs(osp.join(hub_dir, 'checkpoints'))
    return osp.join(hub_dir, 'checkpoints')


@pytest.fixture
def server(tmp_path, monkeypatch):
    """An HTTP server on 127.0.0.1 serving ``tmp_path/srv`` (stopped at the end)."""
    root = tmp_path / 'srv'
    root.mkdir()
    for var in ('NO_PROXY', 'no_proxy'):
        monkeypatch.setenv(var, '127.0.0.1,localhost')

    class Quiet(http.server.SimpleHTTPRequestHandler):

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                            functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs=dict(poll_interval=0.1), daemon=True)
    thread.start()
    try:
        yield str(root), f'http://127.0.0.1:{httpd.server_address[1]}'
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _env(tmp_path):
    """Environment of an entry-point subprocess: hub cache in tmp_path, loopback unproxied."""
    env = dict(
        os.environ,
        TORCH_HOME=str(tmp_path / 'torch_home'),
        NO_PROXY='127.0.0.1',
        no_proxy='127.0.0.1',
        HF_HUB_OFFLINE='1',
        TRANSFORMERS_OFFLINE='1')
    env.pop('PYTHONPATH', None)
    return env


def _run(args, tmp_path, timeout=240):
    return _run_many([args], tmp_path, timeout)[0]


def _run_many(arg_lists, tmp_path, timeout=240):
    """Run several commands at once (each pays the import of mmdet / mmrvos)."""
    procs = [
        subprocess.Popen([sys.executable, *args],
                         cwd=REPO_ROOT,
                         env=_env(tmp_path),
                         stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE,
                         text=True) for args in arg_lists
    ]
    results = []
    try:
        for args, proc in zip(arg_lists, procs):
            out, err = proc.communicate(timeout=timeout)
            results.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


# --------------------------------------------------------------------------------------------
# schemes, in-process
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize('kind,legacy', HOSTILE_VARIANTS)
def test_payload_is_live(tmp_path, kind, legacy):
    """Control: unpickled without the allow-list, the hostile file does run (so the absence
    of MARKER elsewhere means it was refused, not that it is inert)."""
    path, _, marker = write_hostile(str(tmp_path / 'evil.pth'), kind, legacy)
    torch.load(path, weights_only=False)
    assert osp.exists(marker)


@pytest.mark.parametrize('kind,legacy', HOSTILE_VARIANTS)
def test_local_path(tmp_path, kind, legacy):
    path, name, marker = write_hostile(str(tmp_path / 'evil.pth'), kind, legacy)
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_load_checkpoint(path)
    assert_refused(err, path, name, marker)
    assert isinstance(err.value, pickle.UnpicklingError)
    good = str(tmp_path / 'good.pth')
    weight = write_benign(good)
    ckpt = safe_load_checkpoint(good, map_location='cpu')
    torch.testing.assert_close(ckpt['state_dict']['w'], weight)
    assert ckpt['meta'] == dict(iter=3, note='plain')


def test_plain_pickle_without_torch_container(tmp_path):
    """A bare ``pickle.dump`` (no torch framing) is refused as well."""
    path = str(tmp_path / 'raw.pkl')
    marker = path + '.MARKER'
    obj, name = _payload('system', marker)
    with open(path, 'wb') as f:
        pickle.dump(obj, f, protocol=2)
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_load_checkpoint(path)
    assert_refused(err, path, name, marker)


@pytest.mark.parametrize('kind,legacy', [('system', False), ('exec', True)])
def test_http_download(tmp_path, hub, server, kind, legacy):
    root, base = server
    _, name, marker = write_hostile(osp.join(root, 'evil.pth'), kind, legacy)
    url = f'{base}/evil.pth'
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_load_checkpoint(url)
    assert_refused(err, url, name, marker)
    # downloaded where mmengine / torch.hub cache it: <hub>/checkpoints/<URL base name>
    cached = osp.join(torch.hub.get_dir(), 'checkpoints', 'evil.pth')
    assert osp.isfile(cached) and cached in str(err.value)
    # mmengine's own entry points inside the context use the same safe loader
    with safe_checkpoint_loaders():
        with pytest.raises(UnsafeCheckpointError):
            mm_ckpt._load_checkpoint(url, map_location='cpu')
        with pytest.raises(UnsafeCheckpointError):
            mm_ckpt.load_checkpoint(torch.nn.Linear(2, 1), url, map_location='cpu')
    assert not osp.exists(marker)
    weight = write_benign(osp.join(root, 'good.pth'))
    ckpt = safe_load_checkpoint(f'{base}/good.pth', map_location='cpu')
    torch.testing.assert_close(ckpt['state_dict']['w'], weight)
    assert osp.isfile(osp.join(hub, 'good.pth'))


def test_https_file_already_in_hub_cache(tmp_path, hub):
    """An ``https://`` checkpoint that is cached is read from the cache (no network)."""
    url = 'https://download.openmmlab.com/mmdetection/v3.0/x/evil_20240101-0123abcd.pth'
    path, name, marker = write_hostile(osp.join(hub, 'evil_20240101-0123abcd.pth'))
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_load_checkpoint(url)
    assert_refused(err, url, name, marker)
    assert path in str(err.value)
    weight = write_benign(osp.join(hub, 'good-0123abcd.pth'))
    ckpt = safe_load_checkpoint('https://example.org/models/good-0123abcd.pth')
    torch.testing.assert_close(ckpt['state_dict']['w'], weight)


@pytest.mark.parametrize('prefix', ['torchvision://', 'modelzoo://'])
def test_torchvision_names(tmp_path, hub, prefix):
    # mmengine's table (the json it ships; torchvision >= 0.13 only adds '<name>.<weights>')
    url = mmengine.load(osp.join(mmengine.__path__[0], 'hub', 'torchvision_0.12.json'))['resnet18']
    cached = osp.join(hub, osp.basename(url))
    _, name, marker = write_hostile(cached)
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_load_checkpoint(prefix + 'resnet18')
    assert_refused(err, url, name, marker)
    weight = write_benign(cached)
    torch.testing.assert_close(safe_load_checkpoint(prefix + 'resnet18')['state_dict']['w'], weight)


@pytest.mark.parametrize('prefix', ['open-mmlab://', 'openmmlab://'])
def test_openmmlab_names(tmp_path, hub, monkeypatch, prefix):
    # a name whose table entry is a URL (cached in the hub dir) ...
    model_name, url = next((k, v) for k, v in sorted(mm_ckpt.get_external_models().items())
                           if v.startswith('https://'))
    cached = osp.join(hub, osp.basename(url))
    _, name, marker = write_hostile(cached)
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_load_checkpoint(prefix + model_name)
    assert_refused(err, url, name, marker)
    weight = write_benign(cached)
    torch.testing.assert_close(safe_load_checkpoint(prefix + model_name)['state_dict']['w'], weight)
    # ... and one of the user's table ($MMENGINE_HOME/open_mmlab.json) with a local entry
    home = tmp_path / 'mmengine_home'
    home.mkdir()
    monkeypatch.setenv('MMENGINE_HOME', str(home))
    (home / 'open_mmlab.json').write_text(json.dumps({'mine': 'weights/mine.pth'}))
    os.makedirs(home / 'weights')
    local, name, marker = write_hostile(str(home / 'weights' / 'mine.pth'), 'exec', True)
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_load_checkpoint(prefix + 'mine')
    assert_refused(err, local, name, marker)
    assert prefix + 'mine' in str(err.value)


def test_mmcls_names(tmp_path, hub):
    model_name, url = sorted(mm_ckpt.get_mmcls_models().items())[0]
    cached = osp.join(hub, osp.basename(url))
    _, name, marker = write_hostile(cached)
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_load_checkpoint('mmcls://' + model_name)
    assert_refused(err, url, name, marker)
    torch.save(
        dict(state_dict=OrderedDict([('backbone.w', torch.ones(2)), ('head.b', torch.zeros(1))])),
        cached)
    ckpt = safe_load_checkpoint('mmcls://' + model_name)
    assert list(ckpt['state_dict']) == ['w']  # mmengine's backbone-only processing


class _FakeBackend:

    def __init__(self, data: bytes):
        self.data = data

    def get(self, filepath):
        return self.data


@pytest.mark.parametrize(
    'name', ['s3://bucket/evil.pth', 'petrel://bucket/evil.pth', 'cluster1:s3://bucket/evil.pth'])
def test_fileio_backends(tmp_path, monkeypatch, name):
    """``s3://`` / ``petrel://`` read bytes through mmengine's fileio backend."""
    path, refused, marker = write_hostile(str(tmp_path / 'evil.pth'))
    data = open(path, 'rb').read()
    from mmrvos.engine import checkpoint as safe
    asked = []

    def fake_backend(filepath, backend_args=None):
        asked.append((filepath, backend_args))
        return _FakeBackend(data)

    monkeypatch.setattr(safe, 'get_file_backend', fake_backend)
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_load_checkpoint(name)
    assert_refused(err, name, refused, marker)
    assert asked == [(name, {'backend': 'petrel'})]
    weight = write_benign(str(tmp_path / 'good.pth'))
    monkeypatch.setattr(safe, 'get_file_backend',
                        lambda *a, **k: _FakeBackend(open(tmp_path / 'good.pth', 'rb').read()))
    torch.testing.assert_close(safe_load_checkpoint(name)['state_dict']['w'], weight)


def test_pavi(tmp_path, monkeypatch):
    path, refused, marker = write_hostile(str(tmp_path / 'evil.pth'))

    class Model:
        name = 'evil.pth'

        def __init__(self, src):
            self.src = src

        def download(self, dst):
            with open(self.src, 'rb') as i, open(dst, 'wb') as o:
                o.write(i.read())

    source = {'evil': path}
    modelcloud = types.SimpleNamespace(get=lambda p: Model(source[p]))
    monkeypatch.setitem(sys.modules, 'pavi', types.SimpleNamespace(modelcloud=modelcloud))
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_load_checkpoint('pavi://evil')
    assert_refused(err, 'pavi://evil', refused, marker)
    source['good'] = str(tmp_path / 'good.pth')
    weight = write_benign(source['good'])
    torch.testing.assert_close(safe_load_checkpoint('pavi://good')['state_dict']['w'], weight)


def test_context_swaps_and_restores_mmengine_schemes():
    before = CheckpointLoader._schemes
    snapshot = dict(before)
    with safe_checkpoint_loaders():
        inside = CheckpointLoader._schemes
        assert set(inside) >= set(snapshot)
        for prefix in snapshot:
            assert inside[prefix].__module__ == 'mmrvos.engine.checkpoint', prefix
        with safe_checkpoint_loaders():  # nests
            pass
        assert CheckpointLoader._schemes is inside
    assert CheckpointLoader._schemes is before and dict(before) == snapshot


def test_import_mmrvos_replaces_no_loader(tmp_path):
    """After ``import mmrvos`` mmengine's scheme table holds the very same functions."""
    code = ('from mmengine.runner import checkpoint as c\n'
            'before = dict(c.CheckpointLoader._schemes)\n'
            'import mmrvos, mmrvos.engine.checkpoint\n'
            'after = dict(c.CheckpointLoader._schemes)\n'
            'assert before.keys() == after.keys(), (before.keys(), after.keys())\n'
            'assert all(after[k] is v for k, v in before.items()), after\n'
            'assert after[""] is c.load_from_local and after["https://"] is c.load_from_http\n'
            '# the configs\' runner_type resolves from the root registry (no default scope yet)\n'
            'from mmengine.config import Config\n'
            'from mmengine.registry import RUNNERS, DefaultScope\n'
            'assert DefaultScope.get_current_instance() is None\n'
            f'runner_type = Config.fromfile({TOY_CONFIG!r}).runner_type\n'
            'assert RUNNERS.get(runner_type) is mmrvos.engine.RVOSRunner, runner_type\n'
            'print("same", len(after))\n')
    res = _run(['-c', code], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.startswith('same')


# --------------------------------------------------------------------------------------------
# the Runner (load_from, resume, init_cfg Pretrained), in-process
# --------------------------------------------------------------------------------------------
_RUN_IDS = itertools.count()


def _toy_runner(work_dir, init_cfg=None, **kwargs):
    from mmengine.model import BaseModel

    from mmrvos.engine import RVOSRunner

    class Toy(BaseModel):

        def __init__(self):
            super().__init__(init_cfg=init_cfg)
            self.linear = torch.nn.Linear(2, 1)

        def forward(self, inputs, targets=None, mode='tensor'):
            out = self.linear(inputs)  # (B, 2) -> (B, 1)
            if mode == 'loss':
                return dict(loss=((out.squeeze(-1) - targets)**2).mean())
            return out

    data = [dict(inputs=torch.tensor([float(i), 1.0]), targets=torch.tensor(1.0)) for i in range(4)]
    return RVOSRunner(
        model=Toy(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=data,
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
        train_cfg=dict(by_epoch=False, max_iters=1, val_interval=1000),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1000)),
        experiment_name=f'hostile_{osp.basename(work_dir)}_{next(_RUN_IDS)}',
        default_scope='mmdet',
        **kwargs)


def _linear_ckpt(path):
    weight, bias = torch.tensor([[2.0, -1.0]]), torch.tensor([0.5])
    torch.save(
        dict(state_dict=OrderedDict([('linear.weight', weight), ('linear.bias', bias)])), path)
    return weight


def test_runner_refuses_load_from_resume_and_pretrained_init(tmp_path, hub, server):
    root, base = server
    evil, name, marker = write_hostile(str(tmp_path / 'evil.pth'))
    runner = _toy_runner(str(tmp_path / 'a'), load_from=evil)
    with pytest.raises(UnsafeCheckpointError) as err:
        runner.train()
    assert_refused(err, evil, name, marker)

    runner = _toy_runner(str(tmp_path / 'b'), load_from=evil, resume=True)
    with pytest.raises(UnsafeCheckpointError) as err:
        runner.train()
    assert_refused(err, evil, name, marker)

    _, name, marker = write_hostile(osp.join(root, 'pre.pth'), 'exec', True)
    url = f'{base}/pre.pth'
    runner = _toy_runner(str(tmp_path / 'c'), init_cfg=dict(type='Pretrained', checkpoint=url))
    with pytest.raises(UnsafeCheckpointError) as err:
        runner.train()
    assert_refused(err, url, name, marker)
    assert CheckpointLoader._schemes[''] is mm_ckpt.load_from_local  # restored after the error


def test_runner_loads_benign_checkpoints(tmp_path, hub, server):
    root, base = server
    weight = _linear_ckpt(osp.join(root, 'good.pth'))
    runner = _toy_runner(str(tmp_path / 'a'), load_from=f'{base}/good.pth')
    runner.train()  # lr 0: weights stay as loaded
    torch.testing.assert_close(runner.model.linear.weight.detach(), weight)
    runner = _toy_runner(
        str(tmp_path / 'b'), init_cfg=dict(type='Pretrained', checkpoint=f'{base}/good.pth'))
    runner.train()
    torch.testing.assert_close(runner.model.linear.weight.detach(), weight)


# --------------------------------------------------------------------------------------------
# entry points, as a user runs them
# --------------------------------------------------------------------------------------------
def _assert_cli_refused(res, named, refused, marker):
    out = res.stdout + res.stderr
    what = f'{res.args[0]}: {out[-3000:]}'
    assert res.returncode != 0, what
    assert 'Refusing to load checkpoint' in out, what
    assert named in out and refused in out, what
    assert not osp.exists(marker), f'{res.args[0]}: the hostile pickle ran'


@pytest.fixture
def frames(tmp_path):
    import numpy as np
    from PIL import Image
    root = tmp_path / 'frames'
    root.mkdir()
    for i in range(2):
        Image.fromarray(np.full((48, 64, 3), 40 * i, np.uint8)).save(root / f'{i:05d}.jpg')
    return str(root)


def test_demo_refuses_hostile_local_and_http_checkpoints(tmp_path, server, frames):
    root, base = server
    evil, name, marker = write_hostile(str(tmp_path / 'evil.pth'))
    _, url_name, url_marker = write_hostile(osp.join(root, 'evil.pth'), 'exec', True)
    url = f'{base}/evil.pth'
    out = str(tmp_path / 'out')
    local_run, url_run = _run_many([[
        'tools/demo.py', frames, '--text', 'a cat', '--config', TINY_CONFIG, '--checkpoint', ckpt,
        '--out-dir', out
    ] for ckpt in (evil, url)], tmp_path)
    _assert_cli_refused(local_run, evil, name, marker)
    _assert_cli_refused(url_run, url, url_name, url_marker)
    # the URL was cached where torch.hub puts it under $TORCH_HOME
    assert osp.isfile(tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'evil.pth')
    assert not osp.exists(out)


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    from mmrvos.datasets.synthetic import make_toy_rvos
    root = str(tmp_path_factory.mktemp('toy'))
    make_toy_rvos(root, seed=3, num_train=1, num_valid=1, num_frames=6, size=(96, 64))
    return root


def _toy_cfg_options(toy_root):
    return [
        f'train_dataloader.dataset.data_root={toy_root}/',
        f'test_dataloader.dataset.data_root={toy_root}/',
        f'val_dataloader.dataset.data_root={toy_root}/', f'test_evaluator.data_root={toy_root}/',
        f'val_evaluator.data_root={toy_root}/', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False'
    ]


def test_train_refuses_hostile_load_from_url(tmp_path, server, toy_root):
    """``load_from=`` an ``http://`` URL: mmengine's own loader would unpickle it with
    ``weights_only=False``; the config's RVOSRunner must not."""
    root, base = server
    _, name, marker = write_hostile(osp.join(root, 'evil.pth'))
    url = f'{base}/evil.pth'
    res = _run([
        'tools/train.py', TOY_CONFIG, '--work-dir',
        str(tmp_path / 'work'), '--cfg-options', f'load_from={url}', 'train_cfg.max_iters=1',
        *_toy_cfg_options(toy_root)
    ], tmp_path)
    _assert_cli_refused(res, url, name, marker)


def test_test_tool_refuses_hostile_checkpoint(tmp_path, toy_root):
    evil, name, marker = write_hostile(str(tmp_path / 'evil.pth'), 'exec', True)
    res = _run([
        'tools/test.py', TOY_CONFIG, evil, '--work-dir',
        str(tmp_path / 'work'), '--cfg-options', *_toy_cfg_options(toy_root)
    ], tmp_path)
    _assert_cli_refused(res, evil, name, marker)


CONVERTERS = [
    ('referdino_to_mmrvos.py', lambda src, tmp: [src, str(tmp / 'dst.pth')]),
    ('groundingdino_to_referdino.py',
     lambda src, tmp: [src, str(tmp / 'dst.pth'), '--config', TINY_CONFIG]),
    ('merge_lora.py', lambda src, tmp: [src, str(tmp / 'dst.pth')]),
    ('publish_model.py', lambda src, tmp:
     [src, '--name', 'rel', '--config', TINY_CONFIG, '--out-dir',
      str(tmp / 'release')]),
]


def test_model_converters_refuse_hostile_input(tmp_path):
    evil, name, marker = write_hostile(str(tmp_path / 'evil.pth'))
    runs = _run_many([[osp.join('tools', 'model_converters', tool), *argv(evil, tmp_path)]
                      for tool, argv in CONVERTERS], tmp_path)
    for (tool, _), res in zip(CONVERTERS, runs):
        _assert_cli_refused(res, evil, name, marker)
        assert res.stderr.lstrip().startswith('error:') and 'Traceback' not in res.stderr, \
            (tool, res.stderr[-2000:])
    assert not osp.exists(tmp_path / 'dst.pth') and not osp.exists(tmp_path / 'release')


# --------------------------------------------------------------------------------------------
# refexp_to_coco: RefCOCO refs(*).p pickles
# --------------------------------------------------------------------------------------------
def py2_pickle(obj) -> bytes:
    """Protocol-2 bytes as Python 2's cPickle writes plain data (``str`` as byte strings:
    SHORT_BINSTRING / BINSTRING; ints BININT1 / BININT; MARK ... APPENDS / SETITEMS)."""
    out = [b'\x80\x02']

    def emit(o):
        if o is None:
            out.append(b'N')
        elif isinstance(o, bool):
            out.append(b'\x88' if o else b'\x89')
        elif isinstance(o, int):
            out.append(b'K' + bytes([o]) if 0 <= o < 256 else b'J' + struct.pack('<i', o))
        elif isinstance(o, float):
            out.append(b'G' + struct.pack('>d', o))
        elif isinstance(o, str):
            raw = o.encode('ascii')
            head = b'U' + bytes([len(raw)]) if len(raw) < 256 else \
                b'T' + struct.pack('<i', len(raw))
            out.append(head + raw)
        elif isinstance(o, list):
            out.append(b'](')
            for item in o:
                emit(item)
            out.append(b'e')
        elif isinstance(o, dict):
            out.append(b'}(')
            for key, value in o.items():
                emit(key)
                emit(value)
            out.append(b'u')
        else:
            raise TypeError(type(o))

    emit(obj)
    out.append(b'.')
    return b''.join(out)


def _refexp_data(tmp_path, refs_bytes: bytes) -> str:
    root = tmp_path / 'coco'
    (root / 'refcoco').mkdir(parents=True)
    instances = dict(
        images=[
            dict(id=581857, file_name='COCO_train2014_000000581857.jpg', height=480, width=640)
        ],
        annotations=[
            dict(
                id=1719310,
                image_id=581857,
                area=1200.5,
                iscrowd=0,
                segmentation=[[10.0, 10.0, 50.0, 10.0, 50.0, 40.0]],
                bbox=[10.0, 10.0, 40.0, 30.0],
                category_id=1)
        ],
        categories=[dict(id=1, name='person')])
    (root / 'refcoco' / 'instances.json').write_text(json.dumps(instances))
    (root / 'refcoco' / 'refs(unc).p').write_bytes(refs_bytes)
    return str(root)


def _refexp(root, tmp_path):
    return _run([
        'tools/dataset_converters/refexp_to_coco.py', '--data-root', root, '--dataset', 'refcoco',
        '--out',
        str(tmp_path / 'out')
    ],
                tmp_path,
                timeout=60)


def test_refexp_to_coco_reads_python2_refs(tmp_path):
    sentences = [
        dict(
            tokens=['the', 'lady', 'with', 'the', 'blue', 'shirt'],
            raw='THE LADY WITH THE BLUE SHIRT',
            sent_id=0,
            sent='the lady with the blue shirt'),
        dict(tokens=['lady', 'in', 'blue'], raw='lady in blue', sent_id=1, sent='lady in blue')
    ]
    refs = [
        dict(
            sent_ids=[0, 1],
            file_name='COCO_train2014_000000581857_16.jpg',
            ann_id=1719310,
            ref_id=0,
            image_id=581857,
            split='train',
            sentences=sentences,
            category_id=1)
    ]
    data = py2_pickle(refs)
    assert pickle.loads(data) == refs  # the hand-made bytes are the refs
    res = _refexp(_refexp_data(tmp_path, data), tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.load(open(tmp_path / 'out' / 'refcoco' / 'instances_refcoco_train.json'))
    assert [img['caption'] for img in out['images']] == [s['sent'] for s in sentences]
    assert [img['original_id'] for img in out['images']] == [581857, 581857]
    assert [a['original_id'] for a in out['annotations']] == [1719310, 1719310]
    assert out['annotations'][1]['bbox'] == [10.0, 10.0, 40.0, 30.0]


class _Py2Object:
    """A new-style object: pickled (protocol 0/1) through ``copy_reg._reconstructor``."""

    def __init__(self):
        self.x = 1


@pytest.mark.parametrize('case', ['system-p2', 'exec-p0', 'reconstructor-p0'])
def test_refexp_to_coco_refuses_hostile_refs(tmp_path, case):
    marker = str(tmp_path / 'MARKER')
    if case == 'reconstructor-p0':
        payload, name = _Py2Object(), 'copy_reg._reconstructor'
    else:
        payload, name = _payload(case.split('-')[0], marker)
        name = name if case.startswith('system') else '__builtin__.exec'  # py2 name in p0
    protocol = int(case[-1])
    refs = [
        dict(
            ref_id=0,
            ann_id=1719310,
            image_id=581857,
            split='train',
            sentences=[],
            category_id=1,
            note=payload)
    ]
    root = _refexp_data(tmp_path, pickle.dumps(refs, protocol=protocol))
    res = _refexp(root, tmp_path)
    assert res.returncode != 0
    assert res.stderr.startswith('error:') and 'Traceback' not in res.stderr, res.stderr
    assert osp.join(root, 'refcoco', 'refs(unc).p') in res.stderr
    assert name in res.stderr, res.stderr
    assert not osp.exists(marker), 'the hostile pickle ran'
    assert not osp.exists(tmp_path / 'out' / 'refcoco')

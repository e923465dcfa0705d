"""Packaging: declared dependencies, the license, and the MIM extension of a built wheel.

References: ``requirements/runtime.txt`` (the pinned stack that ``tools/misc/setup_env.sh``
installs), the Apache-2.0 text, and the repository's own ``configs/``, ``tools/`` and
``model-index.yml`` (what ``mim`` must find under ``mmrvos/.mim`` after ``pip install``).
"""
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    tomllib = pytest.importorskip('tomli')

from rvos_test_utils import REPO_ROOT

MIM_SOURCES = ('configs', 'tools', 'model-index.yml')


def _pyproject():
    with open(osp.join(REPO_ROOT, 'pyproject.toml'), 'rb') as f:
        return tomllib.load(f)


def _requirement_lines(name):
    with open(osp.join(REPO_ROOT, 'requirements', name)) as f:
        lines = [ln.split('#', 1)[0].strip() for ln in f]
    return [ln for ln in lines if ln]


def test_dependencies_are_the_pinned_runtime_stack_without_mmcv():
    deps = _pyproject()['project']['dependencies']
    assert deps == _requirement_lines('runtime.txt')
    names = {d.split('=')[0].split('<')[0].split('>')[0].strip().lower() for d in deps}
    assert {'mmengine', 'mmdet', 'transformers', 'peft'} <= names
    # mmcv must be compiled with its ops for the installed torch: documented, not declared
    assert not any(n.startswith('mmcv') for n in names)
    assert _requirement_lines('mmcv.txt') == ['mmcv==2.1.0']


def test_license_file_is_the_apache_2_text_the_metadata_declares():
    assert _pyproject()['project']['license'] == {'text': 'Apache-2.0'}
    with open(osp.join(REPO_ROOT, 'LICENSE')) as f:
        text = f.read()
    assert 'Apache License' in text and 'Version 2.0, January 2004' in text
    assert 'TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION' in text
    assert 'END OF TERMS AND CONDITIONS' in text
    assert len(text.split()) > 1500  # the full text, not a pointer to it


def _files_under(root, rel):
    """Repository files under ``rel`` (a folder or one file), as paths relative to root."""
    path = osp.join(root, rel)
    if osp.isfile(path):
        return {rel}
    found = set()
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if d != '__pycache__']
        for name in filenames:
            if not name.endswith('.pyc'):
                found.add(osp.relpath(osp.join(dirpath, name), root))
    return found


def _copy_sources(dst):
    """What a source checkout holds for the build (no .venv, no build outputs)."""
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '.mim')
    for name in ('mmrvos', 'configs', 'tools', 'requirements'):
        shutil.copytree(osp.join(REPO_ROOT, name), osp.join(dst, name), ignore=ignore)
    for name in ('pyproject.toml', 'setup.py', 'setup.cfg', 'MANIFEST.in', 'README.md', 'LICENSE',
                 'model-index.yml'):
        shutil.copy(osp.join(REPO_ROOT, name), osp.join(dst, name))


def test_wheel_ships_configs_tools_and_model_index_for_mim(tmp_path):
    src, out = tmp_path / 'src', tmp_path / 'dist'
    src.mkdir()
    _copy_sources(str(src))
    proc = subprocess.run([
        sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index',
        '--disable-pip-version-check', '-q', '-w',
        str(out),
        str(src)
    ],
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True,
                          timeout=600)
    if proc.returncode != 0 and 'No module named pip' in proc.stderr:
        pytest.skip('pip is not installed in this interpreter')
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel, ) = out.iterdir()
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read(next(n for n in names if n.endswith('.dist-info/METADATA')))
    shipped = {n[len('mmrvos/.mim/'):] for n in names if n.startswith('mmrvos/.mim/')}
    expected = set()
    for rel in MIM_SOURCES:
        expected |= _files_under(REPO_ROOT, rel)
    assert shipped == expected
    assert 'configs/referdino/metafile.yml' in shipped and 'tools/test.py' in shipped
    assert not any('__pycache__' in n or n.endswith('.pyc') for n in names)
    # the dependencies reach pip's metadata; mmcv is not among them
    requires = [
        ln.split(':', 1)[1].strip() for ln in metadata.decode().splitlines()
        if ln.startswith('Requires-Dist:') and 'extra ==' not in ln
    ]
    assert len(requires) == len(_requirement_lines('runtime.txt'))
    assert not any(r.lower().startswith('mmcv') for r in requires)
    assert 'License-File: LICENSE' in metadata.decode()

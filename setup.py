"""Build hook of mmrvos: the MIM extension (metadata and dependencies live in pyproject.toml).

``mim`` (OpenMMLab's package manager) finds a package's configs, tools and model index under
``<package>/.mim/``. As mmdet's ``setup.py`` does, the repository's ``configs/``, ``tools/`` and
``model-index.yml`` are placed there when the package is built:

* editable installs (``pip install -e .``, setuptools' ``editable_wheel`` / ``develop``):
  relative symlinks, so that edits to a config are seen at once (copies on Windows);
* wheels and source distributions (``pip install .``, ``pip wheel .``, ``python -m build``):
  copies, shipped as package data (``[tool.setuptools.package-data]`` in pyproject.toml and
  ``MANIFEST.in``).

``mmrvos/.mim`` is generated and ignored by git. mmcv is not a dependency of the package: it
must be compiled with its ops for the installed torch (see docs/en/get_started.md).
"""
import os
import os.path as osp
import platform
import shutil
import sys
import warnings

from setuptools import setup

MIM_FILES = ('configs', 'tools', 'model-index.yml')


def _install_mode() -> str:
    """'symlink', 'copy' or '' (nothing to do) from the setuptools command being run."""
    if any(cmd in sys.argv for cmd in ('develop', 'editable_wheel')):
        return 'copy' if platform.system() == 'Windows' else 'symlink'
    if any(cmd in sys.argv for cmd in ('sdist', 'bdist_wheel', 'build', 'build_py')):
        return 'copy'
    return ''


def add_mim_extension() -> None:
    """Place ``configs/``, ``tools/`` and ``model-index.yml`` under ``mmrvos/.mim``."""
    mode = _install_mode()
    if not mode:
        return
    repo_path = osp.dirname(osp.abspath(__file__))
    mim_path = osp.join(repo_path, 'mmrvos', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for filename in MIM_FILES:
        src_path = osp.join(repo_path, filename)
        if not osp.exists(src_path):
            # building from a source distribution: mmrvos/.mim already holds the copies
            continue
        tar_path = osp.join(mim_path, filename)
        if osp.islink(tar_path) or osp.isfile(tar_path):
            os.remove(tar_path)
        elif osp.isdir(tar_path):
            shutil.rmtree(tar_path)
        if mode == 'symlink':
            os.symlink(osp.relpath(src_path, mim_path), tar_path)
        elif osp.isfile(src_path):
            shutil.copyfile(src_path, tar_path)
        elif osp.isdir(src_path):
            shutil.copytree(src_path, tar_path,
                            ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            warnings.warn(f'Cannot copy {src_path} into {mim_path}.')


if __name__ == '__main__':
    add_mim_extension()
    setup()

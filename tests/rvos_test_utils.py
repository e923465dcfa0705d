"""Shared test constants and helpers: repository paths, the real fixture, the tiny BERT,
loading a command-line script as a module."""
import importlib.util
import os.path as osp

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_BERT = osp.join(REPO_ROOT, 'tests', 'data', 'tiny_bert')
# The real DAVIS `judo` fixture lives beside the repository (never copied into it).
JUDO = osp.normpath(osp.join(REPO_ROOT, '..', 'shared', 'fixtures', 'davis-judo'))
TINY_CONFIG = osp.join(REPO_ROOT, 'configs', '_base_', 'models', 'referdino_tiny.py')


def load_script(rel_path: str):
    """Import a script of the repository (e.g. ``tools/misc/run_demo.py``) as a fresh module."""
    name = 'mmrvos_script_' + rel_path.replace('/', '_').replace('.', '_')
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO_ROOT, rel_path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

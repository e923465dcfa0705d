"""Shared test constants and helpers: repository paths, the real fixture, the tiny BERT."""
import os.path as osp

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_BERT = osp.join(REPO_ROOT, 'tests', 'data', 'tiny_bert')
# The real DAVIS `judo` fixture lives beside the repository (never copied into it).
JUDO = osp.normpath(osp.join(REPO_ROOT, '..', 'shared', 'fixtures', 'davis-judo'))
TINY_CONFIG = osp.join(REPO_ROOT, 'configs', '_base_', 'models', 'referdino_tiny.py')

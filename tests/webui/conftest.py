"""Make the helpers of this folder (``webui_helpers``) and of tests/robustness (``run_tool``
...: entry points run as a user runs them) importable (importlib import mode)."""
import sys
from os import path as osp

_HERE = osp.dirname(osp.abspath(__file__))
for _path in (_HERE, osp.join(osp.dirname(_HERE), 'robustness')):
    if _path not in sys.path:
        sys.path.insert(0, _path)

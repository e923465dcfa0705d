"""Make the shell helpers of tests/robustness (``run_tool`` ...: entry points run as a user
runs them) importable here (importlib import mode)."""
import sys
from os import path as osp

_ROBUSTNESS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'robustness')
if _ROBUSTNESS not in sys.path:
    sys.path.insert(0, _ROBUSTNESS)

"""Make the shared test helpers of this folder importable (importlib import mode)."""
import sys
from os import path as osp

_HERE = osp.dirname(osp.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

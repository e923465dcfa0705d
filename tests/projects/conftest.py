"""Make ``projects.*`` importable (mmdet convention: projects are run from the repo root)."""
import sys

from rvos_test_utils import REPO_ROOT

if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

"""ReferDINO and its building blocks (registered in mmdet's MODELS / TASK_UTILS)."""
from .data_preprocessors import *  # noqa: F401,F403
from .detectors import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .refiners import *  # noqa: F401,F403
from .task_modules import *  # noqa: F401,F403

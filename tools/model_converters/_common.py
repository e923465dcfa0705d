"""Shared bits of the model-converter CLIs (argument checks, saving, model key sets)."""
import hashlib
import os
import os.path as osp
import sys

import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def run_cli(main) -> None:
    """Run a converter's ``main()`` as a command: a refused (unsafe) checkpoint, a missing file
    or a conversion problem prints ``error: ...`` and exits non-zero, without a traceback."""
    from mmrvos.checkpoint_conversion import CheckpointConversionError
    from mmrvos.engine.checkpoint import UnsafeCheckpointError
    try:
        main()
    except (UnsafeCheckpointError, CheckpointConversionError, FileNotFoundError) as err:
        raise SystemExit(f'error: {err}') from None


def refuse_overwrite(path: str, overwrite: bool) -> None:
    """Exit with a clear message if ``path`` exists and ``--overwrite`` was not given."""
    if osp.exists(path) and not overwrite:
        raise SystemExit(f'error: {path} exists; pass --overwrite to replace it')


def save_checkpoint(obj, path: str, overwrite: bool = False) -> None:
    """``torch.save`` to ``path`` (through a temporary file, so a crash leaves no half file)."""
    refuse_overwrite(path, overwrite)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    torch.save(obj, tmp)
    os.replace(tmp, path)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def model_state_from_config(config: str, cfg_options=None):
    """Build the model of ``config`` (registers mmrvos) and return its ``state_dict()``."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    register_all_modules(init_default_scope=True)
    import mmrvos  # noqa: F401
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return MODELS.build(cfg.model).state_dict(), cfg

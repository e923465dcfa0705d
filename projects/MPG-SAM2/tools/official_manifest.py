"""Write the state-dict manifest (every key -> shape, dtype, trainable) of the official
MPG-SAM 2 model.

The official checkpoints (huggingface.co/ReeF2025/MPG-SAM2) are 3.7 GB; their key layout is
all ``mpg_sam2_to_mmrvos.py`` needs to be tested against. This tool builds the official
``EvfSamModel`` (BEiT-3 + SAM 2 Hiera-L) from a checkout of the official repository on the
``meta`` device (no memory, no weights, ~1 s) and writes a small JSON manifest in the format of
``tools/model_converters/official_manifest.py``. Nothing of the official repository is copied;
it is imported from ``--official-repo``, which is not modified.

The official code imports packages that are not needed to build the model (hydra, omegaconf,
fairscale, timm, torchvision through segment_anything); small stand-ins take their place while
it is imported, and its Hydra SAM 2 builder is replaced by a reader of the same YAML file.
Needs ``einops`` and ``pyyaml``.

Example::

    git clone https://github.com/rongfu-dsb/MPG-SAM2 ../MPG-SAM2
    python projects/MPG-SAM2/tools/official_manifest.py --official-repo ../MPG-SAM2
    # -> projects/MPG-SAM2/tests/data/official_manifest/mpg_sam2_beit3-large_sam2-hiera-l.json
"""
import argparse
import contextlib
import importlib
import os.path as osp
import re
import subprocess
import sys
import types

PROJECT = osp.dirname(osp.dirname(osp.abspath(__file__)))
REPO_ROOT = osp.dirname(osp.dirname(PROJECT))
DEFAULT_OUT = osp.join(PROJECT, 'tests', 'data', 'official_manifest',
                       'mpg_sam2_beit3-large_sam2-hiera-l.json')
SAM2_CONFIG = 'sam2_configs/sam2_hiera_l.yaml'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--official-repo', required=True, help='checkout of rongfu-dsb/MPG-SAM2')
    parser.add_argument('--scale', default='large', choices=['large', 'base'])
    parser.add_argument('--out', default=DEFAULT_OUT)
    return parser.parse_args(argv)


def _module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


def _package(name: str, path: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__path__ = [path]
    return mod


@contextlib.contextmanager
def official_import_env(repo: str):
    """sys.path and stand-in modules for importing the official model code."""
    import torch.nn as nn
    import transformers  # noqa: F401  (imported before the timm stand-in: it probes timm)

    def drop_path(x, drop_prob=0., training=False, scale_by_keep=True):
        return x

    mods = {
        'hydra':
        _module('hydra', compose=None, initialize_config_module=lambda *a, **k: None),
        'hydra.utils':
        _module('hydra.utils', instantiate=None),
        'omegaconf':
        _module('omegaconf', OmegaConf=None),
        'fairscale':
        _module('fairscale'),
        'fairscale.nn':
        _module('fairscale.nn', checkpoint_wrapper=lambda m: m, wrap=lambda m: m),
        'timm':
        _module('timm'),
        'timm.models':
        _module('timm.models'),
        'timm.models.layers':
        _module(
            'timm.models.layers',
            drop_path=drop_path,
            trunc_normal_=lambda t, mean=0., std=1., a=-2., b=2.: nn.init.trunc_normal_(
                t, mean, std, a, b)),
        'models':
        _package('models', osp.join(repo, 'models')),
        'models.sam2':
        _package('models.sam2', osp.join(repo, 'models', 'sam2')),
        'models.segment_anything':
        _module('models.segment_anything', build_sam_vit_h=None),
    }
    saved = {k: sys.modules.get(k) for k in mods}
    paths = [repo, osp.join(repo, 'models', 'unilm')]
    sys.modules.update(mods)
    sys.path[:0] = paths
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
        for p in paths:
            sys.path.remove(p)


def _instantiate(node):
    """Hydra-style ``_target_`` instantiation of a parsed YAML node."""
    if isinstance(node, dict):
        args = {k: _instantiate(v) for k, v in node.items() if k != '_target_'}
        if '_target_' in node:
            module, name = node['_target_'].rsplit('.', 1)
            return getattr(importlib.import_module(module), name)(**args)
        return args
    if isinstance(node, list):
        return [_instantiate(v) for v in node]
    if isinstance(node, str) and re.fullmatch(r'[-+]?\d+(\.\d*)?[eE][-+]?\d+', node):
        return float(node)
    return node


def build_official_model(repo: str, scale: str, device: str = 'meta'):
    """The official ``EvfSamModel`` (on the meta device: no memory, no weights; on ``'cpu'``:
    its own random initialisation). Call inside :func:`official_import_env`."""
    import torch
    import yaml

    def build_predictor(config_file, *args, **kwargs):
        with open(osp.join(repo, 'sam2_configs', config_file)) as f:
            cfg = yaml.safe_load(f)['model']
        cfg['_target_'] = 'models.sam2.sam2_video_predictor.SAM2VideoPredictor'
        return _instantiate(cfg)

    evf = importlib.import_module('models.evf_sam')
    evf.build_sam2_video_predictor = build_predictor
    config = importlib.import_module('models.configuration_evf')
    linspace = torch.linspace
    # Hiera reads drop-path rates with .item(): keep linspace on the CPU
    torch.linspace = lambda *a, **k: linspace(*a, **{**k, 'device': 'cpu'})
    try:
        with torch.device(device):
            return evf.EvfSamModel(config.EvfConfig(hidden_size=1024, mm_extractor_scale=scale))
    finally:
        torch.linspace = linspace


def main(argv=None):
    args = parse_args(argv)
    repo = osp.abspath(args.official_repo)
    if not osp.isfile(osp.join(repo, 'models', 'evf_sam.py')):
        raise SystemExit(f'error: {repo} is not a checkout of rongfu-dsb/MPG-SAM2 '
                         '(no models/evf_sam.py)')
    sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'model_converters'))
    from official_manifest import dump_manifest, manifest_of
    with official_import_env(repo):
        model = build_official_model(repo, args.scale)
    try:
        commit = subprocess.run(['git', '-C', repo, 'rev-parse', 'HEAD'],
                                capture_output=True,
                                text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = 'unknown'
    manifest = manifest_of(
        model, f'models/evf_sam.py EvfSamModel(EvfConfig(hidden_size=1024, '
        f'mm_extractor_scale="{args.scale}")) + {SAM2_CONFIG}', commit)
    manifest['generated_by'] = 'projects/MPG-SAM2/tools/official_manifest.py'
    dump_manifest(manifest, args.out)
    print(f'{args.out}: {manifest["num_keys"]} keys, {manifest["num_elements"]:,} values')


if __name__ == '__main__':
    main()

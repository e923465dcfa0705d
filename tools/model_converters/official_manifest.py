"""Write the state-dict manifest (every key -> shape, dtype) of the official ReferDINO model.

The official checkpoints (``iSEE-Laboratory/ReferDINO``) are large downloads; their key layout
is all that the converter (``referdino_to_mmrvos.py``) needs to be tested against. This tool
builds the official model with random weights from an official config (``configs/*.yaml`` of
the official repository) and writes a small JSON manifest: the config name, the official
commit, and for every state-dict key its shape, dtype and whether the official fine-tuning
trains it (``requires_grad`` after the official builder's freezing), one key per line.
``tests/tools/test_official_manifest.py`` builds a random official-layout checkpoint from each
manifest, converts it with ``referdino_to_mmrvos.py`` and loads it strictly into the mmrvos
config.

Nothing is downloaded: BERT is a ``bert-base-uncased``-sized ``BertModel`` built from a default
``transformers.BertConfig()`` with random weights (or ``--bert DIR``, a local model directory
with its tokenizer), and the official Grounding DINO initialisation that the official builder
loads is replaced by an empty file. The official code needs ``einops`` and ``loralib``
(``pip install einops loralib``); it is imported from ``--official-repo``, which is not
modified. Where ``torchvision`` or ``timm`` are not installed, small stand-ins provide the few
helpers of theirs that the official model's Swin/BERT path imports (``DropPath``,
``to_2tuple``, ``trunc_normal_``; the ResNet and NMS helpers are stubs that raise if called).

Example::

    git clone https://github.com/iSEE-Laboratory/ReferDINO ../ReferDINO
    python tools/model_converters/official_manifest.py --official-repo ../ReferDINO \\
        configs/ytvos_swint.yaml          # -> tests/data/official_manifest/referdino_swin-t.json
    python tools/model_converters/official_manifest.py --official-repo ../ReferDINO \\
        configs/ytvos_swinb.yaml          # -> tests/data/official_manifest/referdino_swin-b.json
"""
import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import types

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MANIFEST_DIR = osp.join(REPO_ROOT, 'tests', 'data', 'official_manifest')
OFFICIAL_DEPS = ('einops', 'loralib')
#: official backbone name -> manifest name
BACKBONE_NAMES = {
    'swin_T_224_1k': 'referdino_swin-t',
    'swin_B_384_22k': 'referdino_swin-b',
    'swin_B_224_22k': 'referdino_swin-b224',
    'swin_L_224_22k': 'referdino_swin-l224',
    'swin_L_384_22k': 'referdino_swin-l'
}
#: special tokens the official model looks up in its tokenizer
_VOCAB = [
    '[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '.', '?', ',', 'the', 'a', 'person', 'on', 'left',
    'right', 'dog', 'cat', 'red', 'man', 'woman', 'in', 'of'
]


class Args(dict):
    """Attribute access to a nested dict (the official code reads ``args.GroundingDINO.x``)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e

    def __setattr__(self, name, value):
        self[name] = value

    @classmethod
    def wrap(cls, obj):
        if isinstance(obj, dict):
            return cls({k: cls.wrap(v) for k, v in obj.items()})
        return obj


def fail(msg: str) -> None:
    print(f'error: {msg}', file=sys.stderr)
    raise SystemExit(1)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'config',
        help='official config (.yaml), absolute or relative to '
        '--official-repo, e.g. configs/ytvos_swint.yaml')
    parser.add_argument(
        '--official-repo',
        required=True,
        help='checkout of iSEE-Laboratory/ReferDINO (read, never modified)')
    parser.add_argument(
        '--out',
        help='manifest path (default: tests/data/official_manifest/'
        'referdino_swin-{t,b}.json from the config\'s backbone)')
    parser.add_argument(
        '--official-commit',
        help='commit of the official code to record (default: git rev-parse '
        'HEAD in --official-repo)')
    parser.add_argument(
        '--bert',
        help='local BERT-base model directory with its tokenizer '
        '(default: random weights from transformers.BertConfig())')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing manifest')
    return parser.parse_args(argv)


# ------------------------------------------------------------------ official config
def load_official_config(path: str) -> Args:
    """The official yaml (``key: {value: ...}``) as nested attribute dicts."""
    import yaml
    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        fail(f'cannot read the official config {path}: {e}')
    if not isinstance(raw, dict) or not all(
            isinstance(v, dict) and 'value' in v for v in raw.values()):
        fail(f'{path} is not an official ReferDINO config (every top-level entry must have a '
             '"value")')
    cfg = Args.wrap({k: v['value'] for k, v in raw.items()})
    if 'GroundingDINO' not in cfg or 'backbone' not in cfg.GroundingDINO:
        fail(f'{path} has no GroundingDINO.backbone entry')
    return cfg


def official_commit(repo: str, given: str = None) -> str:
    if given:
        return given
    try:
        out = subprocess.run(['git', '-C', repo, 'rev-parse', 'HEAD'],
                             capture_output=True,
                             text=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError):
        return 'unknown'
    return out.stdout.strip() if out.returncode == 0 else 'unknown'


# ------------------------------------------------------------------ building the official model
def check_official_repo(repo: str) -> str:
    repo = osp.abspath(repo)
    if not osp.isfile(osp.join(repo, 'models', 'GroundingDINO', 'groundingdino.py')):
        fail(f'{repo} is not a checkout of the official ReferDINO code '
             '(models/GroundingDINO/groundingdino.py not found)')
    missing = [m for m in OFFICIAL_DEPS if importlib.util.find_spec(m) is None]
    if missing:
        fail(f'the official code needs {", ".join(missing)}: pip install {" ".join(missing)}')
    return repo


def _unavailable(name: str):

    def stub(*args, **kwargs):
        raise NotImplementedError(f'{name} is a stand-in (torchvision is not installed); the '
                                  'official Swin model path does not use it')

    return stub


def _standin_modules() -> dict:
    """Minimal ``torchvision`` / ``timm`` modules for what the official Swin + BERT model
    imports, for environments without them (mmrvos needs neither)."""
    import torch
    import torch.nn as nn
    mods = {}
    if importlib.util.find_spec('torchvision') is None:
        tv = types.ModuleType('torchvision')
        tv.__version__ = '0.99.0+standin'  # the official misc.py parses the minor version
        tv._is_tracing = lambda: False
        tv_models = types.ModuleType('torchvision.models')
        tv_utils = types.ModuleType('torchvision.models._utils')
        tv_utils.IntermediateLayerGetter = _unavailable('IntermediateLayerGetter (ResNet)')
        tv_ops = types.ModuleType('torchvision.ops')
        tv_boxes = types.ModuleType('torchvision.ops.boxes')
        tv_boxes.nms = _unavailable('torchvision.ops.nms')
        tv_boxes.box_area = _unavailable('torchvision.ops.box_area')
        tv.models, tv_models._utils, tv.ops, tv_ops.boxes = tv_models, tv_utils, tv_ops, tv_boxes
        mods.update({
            'torchvision': tv,
            'torchvision.models': tv_models,
            'torchvision.models._utils': tv_utils,
            'torchvision.ops': tv_ops,
            'torchvision.ops.boxes': tv_boxes
        })
    if importlib.util.find_spec('timm') is None:

        class DropPath(nn.Module):
            """Stochastic depth per sample (timm's definition); identity in eval mode."""

            def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True):
                super().__init__()
                self.drop_prob, self.scale_by_keep = drop_prob, scale_by_keep

            def forward(self, x):
                if self.drop_prob == 0.0 or not self.training:
                    return x
                keep = 1 - self.drop_prob
                mask = x.new_empty((x.shape[0], ) + (1, ) * (x.ndim - 1)).bernoulli_(keep)
                if keep > 0 and self.scale_by_keep:
                    mask.div_(keep)
                return x * mask

        def to_2tuple(x):
            return tuple(x) if isinstance(x, (list, tuple)) else (x, x)

        def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
            return torch.nn.init.trunc_normal_(tensor, mean, std, a, b)

        timm = types.ModuleType('timm')
        timm_models = types.ModuleType('timm.models')
        timm_layers = types.ModuleType('timm.models.layers')
        timm_layers.DropPath, timm_layers.to_2tuple = DropPath, to_2tuple
        timm_layers.trunc_normal_ = trunc_normal_
        timm.models, timm_models.layers = timm_models, timm_layers
        mods.update({'timm': timm, 'timm.models': timm_models, 'timm.models.layers': timm_layers})
    return mods


@contextlib.contextmanager
def _temporary_modules(mods: dict):
    """Put ``mods`` into ``sys.modules`` while the official code is imported, then remove
    them again (the imported official modules keep their references)."""
    saved = {name: sys.modules.get(name) for name in mods}
    sys.modules.update(mods)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def import_official(repo: str, module: str):
    """Import ``module`` (e.g. ``models.GroundingDINO.groundingdino``) from the official repo.

    ``models`` is registered as a bare namespace so that the official ``models/__init__.py``
    (which imports the training criterion and its extra dependencies) is not executed.
    """
    if repo not in sys.path:
        sys.path.insert(0, repo)
    pkg = sys.modules.get('models')
    if pkg is None or getattr(pkg, '__path__', [None])[0] != osp.join(repo, 'models'):
        pkg = types.ModuleType('models')
        pkg.__path__ = [osp.join(repo, 'models')]
        sys.modules['models'] = pkg
    import warnings
    with warnings.catch_warnings(), _temporary_modules(_standin_modules()):
        warnings.simplefilter('ignore')  # "Failed to load custom C++ ops" (CPU path is used)
        return importlib.import_module(module)


def write_random_bert(directory: str) -> str:
    """A ``bert-base-uncased``-sized BERT (random weights, with pooler) and a small
    tokenizer (the official model only looks up its special tokens)."""
    from transformers import BertConfig, BertModel, BertTokenizer
    os.makedirs(directory, exist_ok=True)
    BertModel(BertConfig()).save_pretrained(directory)
    vocab = osp.join(directory, 'vocab.txt')
    with open(vocab, 'w') as f:
        f.write('\n'.join(_VOCAB) + '\n')
    BertTokenizer(vocab, do_lower_case=True).save_pretrained(directory)
    return directory


def build_official_model(repo: str, cfg: Args, bert_dir: str, workdir: str):
    """The official ``build_groundingdino`` with random weights (CPU)."""
    import torch
    gdino = Args(cfg.GroundingDINO)
    gdino.text_encoder_type = bert_dir
    # the official builder loads a Grounding DINO checkpoint at the end: give it an empty one
    empty = osp.join(workdir, 'empty_groundingdino.pth')
    torch.save({'model': {}}, empty)
    gdino.pretrained_path = empty
    gdino.single_frame = cfg.get('dataset_name') in ('coco', 'a2d_sentences', 'jhmdb_sentences')
    module = import_official(repo, 'models.GroundingDINO.groundingdino')
    with contextlib.redirect_stdout(sys.stderr):  # the official builder prints progress
        return module.build_groundingdino(gdino, num_classes=1)


# ------------------------------------------------------------------ manifest
def manifest_of(model, config_name: str, commit: str) -> dict:
    """Every state-dict key -> [shape, dtype, trainable]; ``trainable`` is the parameter's
    ``requires_grad`` after the official builder's freezing (False for buffers)."""
    state = model.state_dict()
    trainable = {
        name
        for name, p in model.named_parameters(remove_duplicate=False) if p.requires_grad
    }
    return dict(
        config=config_name,
        official_commit=commit,
        generated_by='tools/model_converters/official_manifest.py',
        num_keys=len(state),
        num_elements=int(sum(v.numel() for v in state.values())),
        keys={
            k: [list(v.shape), str(v.dtype).replace('torch.', ''), k in trainable]
            for k, v in state.items()
        })


def dump_manifest(manifest: dict, path: str) -> None:
    """Plain JSON, one state-dict key per line (small diffs when the layout changes)."""
    head = {k: v for k, v in manifest.items() if k != 'keys'}
    lines = ['{'] + [f'{json.dumps(k)}: {json.dumps(v)},' for k, v in head.items()]
    lines.append('"keys": {')
    items = list(manifest['keys'].items())
    lines += [
        f'{json.dumps(k)}: {json.dumps(v)}' + (',' if i < len(items) - 1 else '')
        for i, (k, v) in enumerate(items)
    ]
    lines += ['}', '}']
    text = '\n'.join(lines) + '\n'
    json.loads(text)  # well-formed
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def load_manifest(path: str) -> dict:
    """Read a manifest written by this tool."""
    with open(path) as f:
        manifest = json.load(f)
    if not isinstance(manifest.get('keys'), dict):
        raise ValueError(f'{path} is not an official-layout manifest (no "keys")')
    return manifest


def main(argv=None):
    args = parse_args(argv)
    repo = check_official_repo(args.official_repo)
    config = args.config if osp.isfile(args.config) else osp.join(repo, args.config)
    if not osp.isfile(config):
        fail(f'official config not found: {args.config} (nor under {repo})')
    cfg = load_official_config(config)
    backbone = cfg.GroundingDINO.backbone
    if args.out:
        out = args.out
    elif backbone in BACKBONE_NAMES:
        out = osp.join(MANIFEST_DIR, BACKBONE_NAMES[backbone] + '.json')
    else:
        fail(f'unknown official backbone {backbone!r}; pass --out')
    if osp.exists(out) and not args.overwrite:
        fail(f'{out} exists; pass --overwrite to replace it')
    if args.bert and not osp.isdir(args.bert):
        fail(f'--bert {args.bert} is not a directory')
    rel = osp.relpath(osp.abspath(config), repo)
    config_name = rel if not rel.startswith('..') else osp.basename(config)
    with tempfile.TemporaryDirectory() as workdir:
        bert = osp.abspath(args.bert) if args.bert else write_random_bert(osp.join(workdir, 'bert'))
        model = build_official_model(repo, cfg, bert, workdir)
        manifest = manifest_of(model, config_name, official_commit(repo, args.official_commit))
    dump_manifest(manifest, out)
    print(f'{manifest["num_keys"]} keys ({manifest["num_elements"]:,} elements) of '
          f'{config_name} -> {out}')


if __name__ == '__main__':
    main()

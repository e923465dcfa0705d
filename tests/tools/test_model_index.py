"""model-index.yml -> configs/referdino/metafile.yml: OpenMMLab model-index structure."""
import os.path as osp
import shlex

import yaml

from rvos_test_utils import REPO_ROOT


def _load(path):
    with open(osp.join(REPO_ROOT, path)) as f:
        return yaml.safe_load(f)


def test_model_index_imports_the_referdino_metafile():
    index = _load('model-index.yml')
    assert index == {'Import': ['configs/referdino/metafile.yml']}
    for path in index['Import']:
        assert osp.isfile(osp.join(REPO_ROOT, path)), path


# the paper's Ref-YouTube-VOS J&F (docs: ../shared/PAPER_NOTES.md, "Results to beat")
PAPER_JF = {'referdino_swin-t_8xb1-2e_ref-ytvos': 67.5, 'referdino_swin-b_8xb1-2e_ref-ytvos': 69.3}
# the official release (github.com/iSEE-Laboratory/ReferDINO, README "Model Zoo"): Swin-B only
OFFICIAL = {
    'referdino_swin-b_8xb1-2e_ref-ytvos':
    'https://huggingface.co/liangtm/referdino/resolve/main/ryt_swinb.pth'
}


def test_metafile_entries():
    meta = _load('configs/referdino/metafile.yml')
    collections = {c['Name'] for c in meta['Collections']}
    models = {m['Name']: m for m in meta['Models']}
    assert set(models) == set(PAPER_JF)
    for name, entry in models.items():
        assert entry['In Collection'] in collections
        assert entry['Config'] == f'configs/referdino/{name}.py'
        (result, ) = entry['Results']
        assert result['Task'] == 'Referring Video Object Segmentation'
        assert result['Dataset'] == 'Ref-YouTube-VOS'
        assert result['Metrics'] == {'J&F': PAPER_JF[name]}


def test_metafile_weights_are_honest():
    """No mmrvos-format checkpoint is released: ``Weights`` says so and holds no URL (the
    inferencer would download and fail on it); official weights are named with the command
    that converts them for the entry's own config."""
    from mmrvos.apis.rvos_inferencer import _loadable
    meta = _load('configs/referdino/metafile.yml')
    for entry in meta['Models']:
        weights = entry['Weights']
        assert weights.startswith('NOT RELEASED') and '://' not in weights, weights
        assert not _loadable(weights)
        official = entry['Metadata'].get('Official Weights')
        assert official == OFFICIAL.get(entry['Name'])
        if official is None:
            assert 'Converter' not in entry['Metadata']
            continue
        argv = shlex.split(entry['Metadata']['Converter'])
        assert argv[:2] == ['python', 'tools/model_converters/referdino_to_mmrvos.py']
        assert osp.isfile(osp.join(REPO_ROOT, argv[1]))
        assert argv[2] == osp.basename(official)  # the downloaded file
        assert argv[argv.index('--config') + 1] == entry['Config']
        assert argv[argv.index('--lora') + 1] == 'keep'  # the configs wrap LoRA (peft layout)


def test_collection_readme_exists_and_lists_every_model():
    meta = _load('configs/referdino/metafile.yml')
    (collection, ) = meta['Collections']
    readme = collection['README']
    assert readme == 'configs/referdino/README.md'
    with open(osp.join(REPO_ROOT, readme)) as f:
        text = f.read()
    for entry in meta['Models']:
        assert osp.basename(entry['Config']) in text
        assert str(PAPER_JF[entry['Name']]) in text
    assert collection['Paper']['URL'] in text


def test_metafile_configs_exist():
    meta = _load('configs/referdino/metafile.yml')
    absent = [
        m['Config'] for m in meta['Models'] if not osp.isfile(osp.join(REPO_ROOT, m['Config']))
    ]
    assert not absent, f'configs named in configs/referdino/metafile.yml do not exist: {absent}'

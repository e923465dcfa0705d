"""`make demo`'s data step: it generates the benchmark its recipe was tuned on and refuses a
folder that holds anything else (never mixes a new benchmark into a user's folder)."""
import json
import os.path as osp

import pytest

from rvos_test_utils import load_script


@pytest.fixture
def run_demo(monkeypatch):
    mod = load_script('tools/misc/run_demo.py')
    # a small benchmark keeps the test fast; the logic is the same for the recipe's 2048 / 20
    monkeypatch.setattr(mod, 'NUM_TRAIN', 3)
    monkeypatch.setattr(mod, 'NUM_VALID', 2)
    return mod


def _videos(root, split):
    with open(osp.join(root, 'meta_expressions', split, 'meta_expressions.json')) as f:
        return sorted(json.load(f)['videos'])


def test_generates_the_recipe_benchmark_once(run_demo, tmp_path):
    root = str(tmp_path / 'toy')
    run_demo.prepare_data(root)
    assert _videos(root, 'train') == ['train_0000', 'train_0001', 'train_0002']
    assert _videos(root, 'valid') == ['valid_0000', 'valid_0001']
    jpg = osp.join(root, 'train', 'JPEGImages', 'train_0000', '00000.jpg')
    before = osp.getmtime(jpg)
    run_demo.prepare_data(root)  # present and matching: used as is, not rewritten
    assert osp.getmtime(jpg) == before


def test_refuses_a_different_benchmark(run_demo, tmp_path):
    root = str(tmp_path / 'toy')
    run_demo.prepare_data(root)
    run_demo.NUM_TRAIN = 4
    with pytest.raises(RuntimeError, match=r'3 train / 2 valid videos.*uses 4 / 2'):
        run_demo.prepare_data(root)
    assert len(_videos(root, 'train')) == 3  # left untouched


def test_refuses_a_foreign_non_empty_folder(run_demo, tmp_path):
    root = tmp_path / 'toy'
    root.mkdir()
    (root / 'notes.txt').write_text('mine')
    with pytest.raises(RuntimeError, match=str(root)):
        run_demo.prepare_data(str(root))
    assert sorted(p.name for p in root.iterdir()) == ['notes.txt']

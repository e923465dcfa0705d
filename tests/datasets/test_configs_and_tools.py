"""The dataset configs build and run; the browse and loader-benchmark tools work."""
import glob
import importlib.util
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS
from mmengine.config import Config
from mmengine.dataset import Compose
from rvos_dataset_helpers import make_test_pipeline  # noqa: F401  (registration, scope)

from mmrvos.datasets import RefYouTubeVOSDataset
from mmrvos.datasets.synthetic import make_toy_rvos
from rvos_test_utils import REPO_ROOT

CONFIG_DIR = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets')


def _tool(rel):
    path = osp.join(REPO_ROOT, 'tools', rel)
    spec = importlib.util.spec_from_file_location(osp.basename(rel)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy_cfg'))
    make_toy_rvos(root, seed=2, num_train=3, num_valid=2)
    return root


def test_every_dataset_config_parses_with_paper_settings():
    names = sorted(osp.basename(p) for p in glob.glob(osp.join(CONFIG_DIR, '*.py')))
    assert names == [
        'a2d_sentences.py', 'jhmdb_sentences.py', 'mevis.py', 'ref_davis.py', 'ref_youtube_vos.py',
        'refcoco.py', 'toy_rvos.py'
    ]
    for name in names:
        cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
        loader = cfg.test_dataloader
        steps = [s['type'] for s in loader['dataset']['pipeline']]
        assert steps[0] == 'ClipSample' and steps[-1] == 'PackRVOSInputs', name
    ytvos = Config.fromfile(osp.join(CONFIG_DIR, 'ref_youtube_vos.py'))
    clip = ytvos.train_dataloader.dataset.pipeline[0]
    assert (clip.num_frames, clip.local_range, clip.reverse_prob) == (6, 3, 0.3)
    assert ytvos.train_scales == [288, 320, 352, 392, 416, 448, 480, 512]
    assert ytvos.val_dataloader.dataset.expected_num_videos == 202
    test_resize = ytvos.test_pipeline[1]['transforms'][1]
    # the official evaluation's T.Resize(360): short side 360, no long-side cap, PIL bilinear
    assert test_resize == dict(type='ShortSideResize', scale=360)
    # colours are named in expressions: no hue jitter anywhere (as in the official code)
    for name in names:
        text = open(osp.join(CONFIG_DIR, name)).read()
        assert "'PhotoMetricDistortion'" not in text, name  # mmdet's swaps channels
        assert text.count('hue_delta=0') == text.count("'RVOSPhotoMetricDistortion'"), name
    # the toy's motion words would be contradicted by reversed clips
    toy = Config.fromfile(osp.join(CONFIG_DIR, 'toy_rvos.py'))
    assert toy.train_dataloader.dataset.pipeline[0].reverse_prob == 0.0


@pytest.mark.filterwarnings('ignore::mmrvos.datasets.transforms.AnnotationRepairWarning')
def test_ref_youtube_vos_train_pipeline_on_real_frames(judo_root):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'ref_youtube_vos.py'))
    pipeline = Compose(cfg.train_pipeline)
    ds = RefYouTubeVOSDataset(data_root=judo_root, ann_file='meta_expressions.json', pipeline=[])
    shapes = set()
    for seed in range(12):
        np.random.seed(seed)
        out = pipeline(ds.get_data_info(seed % 4))
        if out is None:  # FilterClipWithoutTarget: no frame shows the (sparse) target
            continue
        t, c, h, w = out['inputs'].shape
        assert (t, c) == (6, 3) and max(h, w) <= 640
        assert min(h, w) in cfg.train_scales or max(h, w) == 640
        shapes.add((h, w))
    assert len(shapes) >= 2


def test_toy_config_builds_train_and_val(toy_root):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'toy_rvos.py'))
    for split in ('train', 'val'):
        dcfg = cfg[f'{split}_dataloader'].dataset
        dcfg.data_root = toy_root
        ds = DATASETS.build(dcfg)
        np.random.seed(0)
        out = ds[0]
        assert out['inputs'].dtype == torch.uint8
        if split == 'val':
            sample = out['data_samples']
            assert out['inputs'].shape == (10, 3, 128, 160) and len(sample) == 10
            assert sample.exp_type in ('static', 'spatial', 'motion')
            assert sample.video_data_samples[0].gt_instances.masks.masks.shape == (1, 128, 160)


def test_browse_tool(toy_root, tmp_path, monkeypatch, capsys):
    tool = _tool('misc/browse_rvos_dataset.py')
    out_dir = str(tmp_path / 'browse')
    monkeypatch.setattr(sys, 'argv', [
        'browse',
        osp.join(CONFIG_DIR, 'toy_rvos.py'), '--output-dir', out_dir, '--num-samples', '2',
        '--cfg-options', f'train_dataloader.dataset.data_root={toy_root}'
    ])
    tool.main()
    files = sorted(glob.glob(osp.join(out_dir, '*.png')))
    assert len(files) == 2
    import cv2
    img = cv2.imread(files[0])
    assert img.shape[0] > 100 and img.shape[1] >= 6 * 112  # 6 frames side by side
    assert '2 overlays written' in capsys.readouterr().out


def test_loader_benchmark_tool(tmp_path, monkeypatch, capsys):
    tool = _tool('analysis_tools/benchmark_loader.py')
    monkeypatch.setattr(sys, 'argv', [
        'bench', '--workers', '0', '--num-clips', '3', '--warmup', '1', '--width', '160',
        '--height', '96'
    ])
    tool.main()
    out = capsys.readouterr().out
    assert 'T=6; workers=0' in out and 'clips/s' in out

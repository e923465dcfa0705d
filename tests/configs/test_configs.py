"""Every shipped config parses, and the model configs build the registered classes."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from rvos_test_utils import REPO_ROOT

CONFIGS = sorted(glob.glob(osp.join(REPO_ROOT, 'configs', 'referdino', '*.py')))


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_config_parses_with_mmrvos_imports(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    assert 'mmrvos' in cfg.custom_imports['imports']
    assert cfg.model.type == 'ReferDINO'
    costs = cfg.model.train_cfg.assigner.match_costs
    # the matching cost uses the loss weights (official code: set_cost_* = *_loss_coef)
    assert costs[0]['weight'] == cfg.model.bbox_head.loss_cls.loss_weight
    assert costs[1]['weight'] == cfg.model.bbox_head.loss_bbox.loss_weight


def test_dataset_presets_follow_the_official_weights():

    def weights(name):
        head = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'referdino', name)).model.bbox_head
        return [
            head[k].loss_weight
            for k in ('loss_cls', 'loss_bbox', 'loss_iou', 'loss_mask', 'loss_dice', 'loss_proj')
        ]

    assert weights('referdino_swin-t_8xb1-2e_ref-ytvos.py') == [4, 5, 2, 5, 5, 5]
    assert weights('referdino_swin-t_8xb1-15e_mevis.py') == [2, 1, 1, 5, 5, 2]
    assert weights('referdino_swin-b_8xb1-6e_a2d-sentences.py') == [1, 3, 3, 5, 4, 4]


def test_toy_stage2_config_freezes_the_frame_feature_path():
    """Stage 2 of the toy recipe trains decoder, heads, pixel decoder and temporal enhancer on
    clips and leaves what stage 1 learnt on frames (Swin, neck, text model, encoder) as is."""
    from mmdet.registry import MODELS
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'referdino', 'referdino_tiny_1xb3-ft_toy-rvos.py'))
    stage1 = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'referdino', 'referdino_tiny_1xb8-1f_toy-rvos.py'))
    # by default stage 2 loads the last checkpoint stage 1 writes with tools/train.py
    last = stage1.train_cfg.max_iters
    assert last % stage1.default_hooks.checkpoint.interval == 0
    assert cfg.load_from == f'work_dirs/referdino_tiny_1xb8-1f_toy-rvos/iter_{last}.pth'
    model = MODELS.build(cfg.model)
    frozen, trained = set(), set()
    for name, param in model.named_parameters():
        (trained if param.requires_grad else frozen).add(name.split('.')[0])
    assert {
        'backbone', 'neck', 'language_model', 'text_feat_map', 'encoder', 'level_embed',
        'memory_trans_fc', 'memory_trans_norm'
    } <= frozen
    assert trained == {'decoder', 'query_embedding', 'bbox_head', 'pixel_decoder', 'temporal'}
    assert not frozen & trained


def test_box_prior_is_a_toy_recipe_extension_only():
    """The toy recipe (both stages) ties masks to boxes; the paper's configs keep the official
    mask decoder, so converted official checkpoints load without an extra parameter."""

    def prior(name):
        cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'referdino', name))
        return cfg.model.bbox_head.mask_decoder.get('box_prior', False)

    for name in ('referdino_tiny_1xb8-1f_toy-rvos.py', 'referdino_tiny_1xb3-ft_toy-rvos.py'):
        assert prior(name) is True, name
    for name in ('referdino_swin-t_8xb1-2e_ref-ytvos.py', 'referdino_swin-b_8xb1-2e_ref-ytvos.py',
                 'referdino_swin-t_8xb1-15e_mevis.py'):
        assert prior(name) is False, name


def test_toy_stage2_sees_motion_expressions_three_times_as_often(tmp_path):
    """Stage 2 (clips) is the only stage that can learn the motion expressions: its train set
    is the whole split plus the split's motion expressions repeated twice, both through the
    same clip pipeline."""
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    import mmrvos  # noqa: F401
    from mmrvos.datasets.synthetic import make_toy_rvos
    init_default_scope('mmdet')
    root = str(tmp_path / 'toy')
    make_toy_rvos(root, seed=5, num_train=6, num_valid=1)
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'referdino', 'referdino_tiny_1xb3-ft_toy-rvos.py'))
    whole, repeated = cfg.train_dataloader.dataset.datasets
    motion = repeated.dataset
    assert repeated.times == 2 and motion.exp_types == ['motion'] and 'exp_types' not in whole
    # the same split, files and clip pipeline: only the expression filter differs
    assert {k: v for k, v in motion.items() if k != 'exp_types'} == dict(whole)
    assert motion.pipeline[0] == dict(
        type='ClipSample', num_frames=3, local_range=1, reverse_prob=0.0)
    for part in (whole, motion):
        part.data_root = root
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    types = [
        dataset.datasets[0].get_data_info(i)['exp_type'] for i in range(len(dataset.datasets[0]))
    ]
    num_motion = types.count('motion')
    assert 0 < num_motion < len(types)
    assert len(dataset) == len(types) + 2 * num_motion
    assert {dataset.get_data_info(i)['exp_type']
            for i in range(len(types), len(dataset))} == {'motion'}

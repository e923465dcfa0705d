"""mmrvos's pruning decoder inside mmdet's own Grounding DINO REC config (custom_imports)."""
import copy
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData

from rvos_test_utils import REPO_ROOT, TINY_BERT

CONFIG = osp.join(REPO_ROOT, 'configs', 'mmdet_mix', 'grounding_dino_swin-t_pruning_rec_refcoco.py')
TEXT = 'the red circle on the left'


def shrunk_model_cfg(**decoder):
    """The mix config's model, shrunk: tiny Swin, tiny BERT, 1+3 layers, 20 queries."""
    cfg = Config.fromfile(CONFIG)
    assert cfg.custom_imports == dict(imports=['mmrvos'], allow_failed_imports=False)
    model = cfg.model
    model.num_queries = 20
    model.language_model.update(name=TINY_BERT, add_pooling_layer=False)
    model.backbone.update(
        embed_dims=32,
        depths=[1, 1, 1, 1],
        num_heads=[1, 2, 4, 8],
        window_size=4,
        drop_path_rate=0.0)
    model.neck.in_channels = [64, 128, 256]
    model.encoder.num_layers = 1
    model.encoder.layer_cfg.ffn_cfg.feedforward_channels = 128
    model.encoder.text_layer_cfg.ffn_cfg.feedforward_channels = 128
    model.encoder.fusion_layer_cfg.embed_dim = 128
    model.decoder.num_layers = 3
    model.decoder.layer_cfg.ffn_cfg.feedforward_channels = 128
    model.decoder.update(decoder)
    return model


def build(model_cfg, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(model_cfg))
    model.init_weights()
    return model


def samples(n=2, h=64, w=96):
    out = []
    for i in range(n):
        s = DetDataSample(
            metainfo=dict(
                img_shape=(h, w),
                ori_shape=(h, w),
                pad_shape=(h, w),
                batch_input_shape=(h, w),
                scale_factor=(1.0, 1.0),
                text=TEXT,
                tokens_positive=[[[0, 14]]]))
        s.gt_instances = InstanceData(
            bboxes=torch.tensor([[10. + i, 8., 50., 40.]]), labels=torch.zeros(1, dtype=torch.long))
        out.append(s)
    return out


@pytest.fixture(scope='module')
def pruned():
    return build(shrunk_model_cfg(drop_rate=0.5))


def test_config_builds_the_pruned_detector(pruned):
    from mmrvos.models.detectors import PrunedGroundingDINO, PrunedGroundingDINOHead
    from mmrvos.models.layers import PruningGroundingDinoDecoder
    assert isinstance(pruned, PrunedGroundingDINO)
    assert isinstance(pruned.decoder, PruningGroundingDinoDecoder)
    assert isinstance(pruned.bbox_head, PrunedGroundingDINOHead)
    assert not hasattr(pruned, 'dn_query_generator')
    assert pruned.decoder.query_counts(20) == [20, 10, 5, 3]


def test_loss_per_layer_and_backward(pruned):
    pruned.train()
    losses = pruned.loss(torch.randn(2, 3, 64, 96), samples())
    for prefix in ('', 'd0.', 'd1.', 'enc_'):
        for term in ('loss_cls', 'loss_bbox', 'loss_iou'):
            assert torch.isfinite(losses[prefix + term]), prefix + term
    assert not any('dn_' in k for k in losses) and 'd2.loss_cls' not in losses
    sum(v for v in losses.values()).backward()
    grad = pruned.decoder.layers[0].ffn.layers[1].weight.grad
    assert grad is not None and grad.abs().sum() > 0


@torch.no_grad()
def test_predict_from_the_last_pruned_layer(pruned):
    pruned.eval()
    results = pruned.predict(torch.randn(2, 3, 64, 96), samples())
    for res in results:
        pred = res.pred_instances
        assert pred.bboxes.shape[-1] == 4 and len(pred.bboxes) == len(pred.scores) > 0
        assert len(pred.scores) == 3  # max_per_img 30, capped: last layer keeps 3 queries
        assert (pred.bboxes[:, 2:] <= torch.tensor([96., 64.]) + 1e-3).all()


@torch.no_grad()
def test_drop_rate_zero_equals_stock_grounding_dino():
    """Without pruning, the mixed-in detector predicts exactly what mmdet's own does with the
    same weights (stock decoder and head)."""
    ours_cfg = shrunk_model_cfg(drop_rate=0.0)
    ours_cfg.test_cfg.max_per_img = 10  # stock mmdet needs max_per_img <= queries
    ours = build(ours_cfg).eval()
    stock_cfg = copy.deepcopy(ours_cfg)
    stock_cfg.type = 'GroundingDINO'
    stock_cfg.decoder.pop('drop_rate')
    stock_cfg.decoder.pop('prune_mode')
    stock_cfg.dn_cfg = dict(
        label_noise_scale=0.5,
        box_noise_scale=1.0,
        group_cfg=dict(dynamic=True, num_dn_queries=100))
    stock = build(stock_cfg, seed=1).eval()
    result = stock.load_state_dict(ours.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert all(k.startswith('dn_query_generator.') for k in result.missing_keys)
    inputs = torch.randn(1, 3, 64, 96)
    a = ours.predict(inputs, samples(1))[0].pred_instances
    b = stock.predict(inputs, samples(1))[0].pred_instances
    torch.testing.assert_close(a.scores, b.scores, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.bboxes, b.bboxes, rtol=1e-5, atol=1e-4)


def test_inherited_dn_cfg_is_ignored():
    cfg = shrunk_model_cfg()
    cfg.dn_cfg = dict(
        label_noise_scale=0.5,
        box_noise_scale=1.0,
        group_cfg=dict(dynamic=True, num_dn_queries=100))
    model = build(cfg)
    assert not hasattr(model, 'dn_query_generator')

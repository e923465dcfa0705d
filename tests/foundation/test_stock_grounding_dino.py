"""mmdet's own GroundingDINO, shrunk, with the offline tiny BERT: loss, backward, predict."""

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

import mmrvos  # noqa: F401  (registers EagerBertModel: BERT with 3-D sub-sentence masks)
from rvos_test_utils import TINY_BERT


def tiny_grounding_dino_cfg():
    d = 256
    return dict(
        type='GroundingDINO',
        num_queries=12,
        with_box_refine=True,
        as_two_stage=True,
        data_preprocessor=dict(
            type='DetDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True),
        language_model=dict(
            type='EagerBertModel',
            name=TINY_BERT,
            pad_to_max=False,
            use_sub_sentence_represent=True,
            special_tokens_list=['[CLS]', '[SEP]', '.', '?']),
        backbone=dict(
            type='SwinTransformer',
            embed_dims=32,
            depths=[1, 1, 1, 1],
            num_heads=[1, 2, 4, 8],
            window_size=4,
            out_indices=(1, 2, 3),
            convert_weights=False),
        neck=dict(
            type='ChannelMapper',
            in_channels=[64, 128, 256],
            kernel_size=1,
            out_channels=d,
            act_cfg=None,
            bias=True,
            norm_cfg=dict(type='GN', num_groups=32),
            num_outs=4),
        encoder=dict(
            num_layers=1,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=d, num_levels=4, num_points=2),
                ffn_cfg=dict(embed_dims=d, feedforward_channels=128)),
            text_layer_cfg=dict(
                self_attn_cfg=dict(num_heads=4, embed_dims=d),
                ffn_cfg=dict(embed_dims=d, feedforward_channels=128)),
            fusion_layer_cfg=dict(v_dim=d, l_dim=d, embed_dim=256, num_heads=4, init_values=1e-4)),
        decoder=dict(
            num_layers=2,
            return_intermediate=True,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=d, num_heads=8),
                cross_attn_text_cfg=dict(embed_dims=d, num_heads=8),
                cross_attn_cfg=dict(embed_dims=d, num_heads=8, num_points=2),
                ffn_cfg=dict(embed_dims=d, feedforward_channels=128)),
            post_norm_cfg=None),
        positional_encoding=dict(num_feats=128, normalize=True, offset=0.0, temperature=20),
        bbox_head=dict(
            type='GroundingDINOHead',
            num_classes=2,
            sync_cls_avg_factor=True,
            contrastive_cfg=dict(max_text_len=256),
            loss_cls=dict(
                type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=5.0)),
        dn_cfg=dict(
            label_noise_scale=0.5,
            box_noise_scale=1.0,
            group_cfg=dict(dynamic=True, num_groups=None, num_dn_queries=10)),
        train_cfg=dict(
            assigner=dict(
                type='HungarianAssigner',
                match_costs=[
                    dict(type='BinaryFocalLossCost', weight=2.0),
                    dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                    dict(type='IoUCost', iou_mode='giou', weight=2.0)
                ])),
        test_cfg=dict(max_per_img=5))


def _sample(h=64, w=96):
    s = DetDataSample(
        metainfo=dict(
            img_shape=(h, w),
            ori_shape=(h, w),
            pad_shape=(h, w),
            batch_input_shape=(h, w),
            scale_factor=(1.0, 1.0)))
    s.text = ('red circle', 'blue square')
    s.custom_entities = True
    s.gt_instances = InstanceData(
        bboxes=torch.tensor([[10., 8., 40., 30.], [50., 20., 90., 60.]]),
        labels=torch.tensor([0, 1]))
    return s


def test_stock_grounding_dino_loss_backward_predict_on_cpu():
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(tiny_grounding_dino_cfg()))
    model.init_weights()
    inputs = torch.rand(2, 3, 64, 96)
    losses = model.loss(inputs, [_sample(), _sample()])
    assert {'loss_cls', 'loss_bbox', 'loss_iou', 'enc_loss_cls', 'dn_loss_cls'} <= set(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    grad = model.text_feat_map.weight.grad
    assert grad is not None and grad.abs().sum() > 0  # gradients reach the text branch

    model.eval()
    with torch.no_grad():
        out = model.predict(inputs[:1], [_sample()])
    pred = out[0].pred_instances
    assert pred.bboxes.shape == (5, 4) and pred.scores.shape == (5, )
    assert set(pred.labels.tolist()) <= {0, 1}
    assert (pred.bboxes[:, 2:] >= pred.bboxes[:, :2]).all()


def test_bert_wrapper_runs_sub_sentence_masks_in_eager_attention():
    bert = MODELS.build(
        dict(
            type='EagerBertModel',
            name=TINY_BERT,
            pad_to_max=False,
            use_sub_sentence_represent=True,
            special_tokens_list=['[CLS]', '[SEP]', '.', '?']))
    out = bert(['red circle. blue square.', 'the cat'])
    assert out['masks'].dim() == 3  # (bs, L, L) sub-sentence attention mask
    assert out['embedded'].shape[:2] == out['masks'].shape[:2]
    assert bert.language_backbone.body.model.config._attn_implementation == 'eager'
    # tokens of one sub-sentence do not see the other: changing the second phrase leaves
    # the first phrase's features unchanged
    a = bert(['red circle. blue square.'])['embedded'][0, 1:3]
    b = bert(['red circle. green star.'])['embedded'][0, 1:3]
    torch.testing.assert_close(a, b)

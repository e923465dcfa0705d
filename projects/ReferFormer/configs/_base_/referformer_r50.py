# ReferFormer, ResNet-50 + RoBERTa-base (frozen), official sizes (wjn922/ReferFormer opts.py
# and scripts): Deformable DETR with 4 encoder + 4 decoder layers, d=256, 8 heads, 4 levels,
# 4 points, FFN 2048, dropout 0.1, box refinement, 5 conditional queries shared across frames;
# dynamic mask head: controller MLP of 3 layers, 3 dynamic 1x1 convs of width 8 on the
# 256-channel CM-FPN map (+2 relative coordinates). Loss weights cls/L1/GIoU/mask/dice
# = 2/5/2/2/5; matching costs the same.
embed_dims = 256
mask_dim = 256
w_cls, w_l1, w_giou, w_mask, w_dice = 2.0, 5.0, 2.0, 2.0, 5.0
# (custom_imports lives in the leaf configs: default_runtime.py also defines it)

model = dict(
    type='ReferFormer',
    num_queries=5,
    num_feature_levels=4,
    data_preprocessor=dict(
        type='TrackDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        pad_mask=True),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),  # stride 4 for the CM-FPN, 8/16/32 for the transformer
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(
        type='ChannelMapper',
        in_channels=[512, 1024, 2048],
        kernel_size=1,
        out_channels=embed_dims,
        act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=32),
        num_outs=4),
    text_encoder=dict(
        type='RobertaTextEncoder', name='roberta-base', out_dims=embed_dims, frozen=True),
    fusion_heads=8,
    encoder=dict(
        num_layers=4,
        layer_cfg=dict(
            self_attn_cfg=dict(
                embed_dims=embed_dims, num_levels=4, num_points=4, batch_first=True, dropout=0.1),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=2048, ffn_drop=0.1))),
    decoder=dict(
        num_layers=4,
        return_intermediate=True,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, dropout=0.1, batch_first=True),
            cross_attn_cfg=dict(
                embed_dims=embed_dims, num_levels=4, num_points=4, batch_first=True, dropout=0.1),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=2048, ffn_drop=0.1)),
        post_norm_cfg=None),
    positional_encoding=dict(num_feats=embed_dims // 2, normalize=True, offset=-0.5),
    cm_fpn=dict(
        type='CrossModalFPN',
        in_channels=[256, embed_dims, embed_dims, embed_dims],
        conv_channels=embed_dims,
        mask_channels=mask_dim,
        num_heads=8,
        feedforward_channels=2048,
        sr_ratios=[8, 4, 2, 1]),
    bbox_head=dict(
        type='ReferFormerHead',
        num_classes=1,
        embed_dims=embed_dims,
        sync_cls_avg_factor=True,
        mask_head=dict(
            type='RVOSDynamicMaskHead',
            embed_dims=embed_dims,
            in_channels=mask_dim,
            reduced_channels=None,
            dynamic_channels=8,
            num_dynamic_layers=3,
            controller_layers=3,
            rel_coord=True),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=w_cls),
        loss_bbox=dict(type='L1Loss', loss_weight=w_l1),
        loss_iou=dict(type='GIoULoss', loss_weight=w_giou),
        loss_mask=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            reduction='none',
            loss_weight=w_mask),
        loss_dice=dict(
            type='DiceLoss',
            use_sigmoid=True,
            naive_dice=True,
            eps=1.0,
            reduction='mean',
            loss_weight=w_dice)),
    train_cfg=dict(
        assigner=dict(
            type='SequenceHungarianAssigner',
            match_costs=[
                dict(type='FocalLossCost', weight=w_cls),
                dict(type='BBoxL1Cost', weight=w_l1, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=w_giou),
                dict(type='FocalLossCost', weight=w_mask, binary_input=True),
                dict(type='DiceCost', weight=w_dice, pred_act=True, eps=1.0),
            ])),
    test_cfg=dict(select='top1', mask_thr=0.5))

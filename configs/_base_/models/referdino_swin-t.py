# ReferDINO, Swin-T + BERT-base, at the official sizes: 900 queries, 6+6 layers, d=256,
# 8 heads, 4 levels, 4 points, 256 text tokens, drop rate 0.5, mask decoder 3 layers with
# 16 points and FFN width 1024, temporal decoder 3 blocks, tracker alpha 0.1.
# Loss weights cls/L1/GIoU/mask/dice/proj = 4/5/2/5/5/5 (Ref-YouTube-VOS, Ref-DAVIS, RefCOCO).
lang_model_name = 'bert-base-uncased'
embed_dims = 256
w_cls, w_l1, w_giou, w_mask, w_dice, w_proj = 4.0, 5.0, 2.0, 5.0, 5.0, 5.0

model = dict(
    type='ReferDINO',
    num_queries=900,
    with_box_refine=True,
    as_two_stage=True,
    # training batches are padded to a multiple of 32 (official collator), inference inputs
    # are not padded (official evaluation: one video, size_divisibility=1)
    data_preprocessor=dict(
        type='RVOSDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1,
        train_pad_size_divisor=32,
        pad_mask=True),
    language_model=dict(
        type='EagerBertModel',
        name=lang_model_name,
        max_tokens=256,
        pad_to_max=False,
        use_sub_sentence_represent=True,
        special_tokens_list=['[CLS]', '[SEP]', '.', '?'],
        add_pooling_layer=False),
    backbone=dict(
        type='SwinTransformer',
        embed_dims=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.2,
        patch_norm=True,
        out_indices=(0, 1, 2, 3),  # stride 4 for the pixel decoder, 8/16/32 for the neck
        with_cp=False,
        convert_weights=False),
    neck=dict(
        type='ChannelMapper',
        in_channels=[192, 384, 768],
        kernel_size=1,
        out_channels=embed_dims,
        act_cfg=None,
        bias=True,
        norm_cfg=dict(type='GN', num_groups=32),
        num_outs=4),
    encoder=dict(
        num_layers=6,
        num_cp=0,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_levels=4, dropout=0.0),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=2048, ffn_drop=0.0)),
        text_layer_cfg=dict(
            self_attn_cfg=dict(num_heads=4, embed_dims=embed_dims, dropout=0.0),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=1024, ffn_drop=0.0)),
        # official fusion_dropout 0.0, fusion_droppath 0.1 (mmdet's defaults: 0.1 / 0.0)
        fusion_layer_cfg=dict(
            v_dim=embed_dims, l_dim=embed_dims, embed_dim=1024, num_heads=4,
            dropout=0.0, drop_path=0.1, init_values=1e-4)),
    decoder=dict(
        num_layers=6,
        return_intermediate=True,
        drop_rate=0.5,
        prune_mode='confidence',
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, dropout=0.0),
            cross_attn_text_cfg=dict(embed_dims=embed_dims, num_heads=8, dropout=0.0),
            cross_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, dropout=0.0),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=2048, ffn_drop=0.0)),
        post_norm_cfg=None),
    positional_encoding=dict(num_feats=128, normalize=True, offset=0.0, temperature=20),
    pixel_decoder=dict(
        type='RVOSPixelDecoder', in_channels=embed_dims, stride4_channels=96,
        out_channels=embed_dims),
    temporal_enhancer=dict(
        type='TemporalEnhancer',
        tracker=dict(type='MemoryTracker', alpha=0.1, gate='code'),
        temporal_decoder=dict(
            type='CrossModalTemporalDecoder', embed_dims=embed_dims, num_heads=8,
            num_layers=3)),
    bbox_head=dict(
        type='ReferDINOHead',
        num_classes=1,
        sync_cls_avg_factor=True,
        contrastive_cfg=dict(max_text_len=256),
        mask_decoder=dict(
            type='GroundingMaskDecoder',
            num_layers=3,
            with_text_cross_attn=True,
            with_deformable_attn=True,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, dropout=0.0),
                cross_attn_text_cfg=dict(embed_dims=embed_dims, num_heads=8, dropout=0.0),
                cross_attn_cfg=dict(
                    embed_dims=embed_dims, num_heads=8, num_levels=1, num_points=16,
                    dropout=0.0),
                # the official mask-decoder layers keep DeformableTransformerDecoderLayer's
                # default FFN width 1024 (not the transformer's 2048)
                ffn_cfg=dict(
                    embed_dims=embed_dims, feedforward_channels=1024, ffn_drop=0.0))),
        loss_cls=dict(
            type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=w_cls),
        loss_bbox=dict(type='L1Loss', loss_weight=w_l1),
        loss_iou=dict(type='GIoULoss', loss_weight=w_giou),
        loss_mask=dict(
            type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, reduction='none',
            loss_weight=w_mask),
        loss_dice=dict(
            type='DiceLoss', use_sigmoid=True, naive_dice=True, eps=1.0, reduction='mean',
            loss_weight=w_dice),
        loss_proj=dict(type='ProjectionLoss', reduction='sum', loss_weight=w_proj)),
    train_cfg=dict(
        assigner=dict(
            type='SequenceHungarianAssigner',
            match_costs=[
                dict(type='FocalLossCost', weight=w_cls),
                dict(type='BBoxL1Cost', weight=w_l1, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=w_giou),
                dict(type='FocalLossCost', weight=w_mask, binary_input=True),
                dict(type='DiceCost', weight=w_dice, pred_act=True, eps=1.0),
                dict(type='ProjectionDiceCost', weight=w_proj),
            ])),
    test_cfg=dict(chunk_size=36, select='top1', score_thr=0.2, mask_thr=0.5),
    # Fine-tuning policy of the official code: LoRA rank 32 (scaling 1/32) on every Linear of
    # the cross-modal encoder and decoder except nn.MultiheadAttention's out_proj. Trainable,
    # by the official keywords (groundingdino.py: "feat_map", "LayerNorm", "backbone.0.norm0",
    # ".bbox_embed", "lora", "pixel_decoder", "mask_decoder", "temporal"): LoRA, the text map,
    # BERT's LayerNorms (the only modules named "LayerNorm"; the transformer's norms stay
    # frozen), Swin's stride-4 output norm, the decoder's shared box MLP (not the encoder
    # proposals' one), the pixel and mask decoders and the temporal enhancer (15.3M params).
    lora=dict(targets=['encoder', 'decoder'], rank=32, alpha=1.0,
              exclude=['out_proj', 'bbox_embed', 'reg_branches']),
    trainable=[
        r'lora_', r'^text_feat_map\.', r'^language_model\..*\.LayerNorm\.', r'^backbone\.norm0\.',
        r'^bbox_head\.reg_branches\.[0-5]\.', r'^bbox_head\.mask_decoder\.', r'^pixel_decoder\.',
        r'^temporal\.'
    ])

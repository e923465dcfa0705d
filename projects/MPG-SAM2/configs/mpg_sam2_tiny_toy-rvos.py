# Tiny MPG-SAM 2 for tests, CPU demos and tools/analysis_tools/compare_systems.py on the
# synthetic toy benchmark (python tools/make_toy_dataset.py data/toy_rvos), trained from
# scratch: BEiT-3 of width 64 (2 layers, 32x32 input), SAM 2 with a 4-stage Hiera of width 16
# at 128x128, C=64, 1 memory-attention layer, 3 memories; the image encoder trains (random
# weights cannot stay frozen). The tokenizer is ReferFormer's offline tiny RoBERTa one (same
# special ids as BEiT-3's XLM-R tokenizer: <s>=0, <pad>=1, </s>=2, <unk>=3).
_base_ = [
    './_base_/mpg_sam2_beit3-l_sam2-hiera-l.py', '../../../configs/_base_/datasets/toy_rvos.py',
    '../../../configs/_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmrvos', 'projects.MPG-SAM2.mpg_sam2'], allow_failed_imports=False)
sam2_size = 128
c = 64
model = dict(
    tokenizer='{{fileDirname}}/../../ReferFormer/tests/data/tiny_roberta',
    multimodal_encoder=dict(
        embed_dims=64,
        num_heads=2,
        num_layers=2,
        ffn_dims=128,
        img_size=32,
        patch_size=8,
        vocab_size=400,
        max_text_positions=66),
    mask_prior_generator=dict(num_heads=2, ffn_dims=128, dropout=0.0),
    tracker=dict(
        freeze_image_encoder=False,
        aggregator=dict(num_heads=2, ffn_dims=128, dropout=0.0),
        config=dict(
            _delete_=True,
            image_size=sam2_size,
            vision_config=dict(
                backbone_config=dict(
                    hidden_size=16,
                    num_attention_heads=1,
                    image_size=[sam2_size, sam2_size],
                    blocks_per_stage=[1, 1, 2, 1],
                    embed_dim_per_stage=[16, 32, 64, 128],
                    num_attention_heads_per_stage=[1, 1, 2, 2],
                    window_size_per_stage=[4, 2, 2, 2],
                    global_attention_blocks=[3],
                    window_positional_embedding_background_size=[2, 2]),
                backbone_channel_list=[128, 64, 32, 16],
                backbone_feature_sizes=[[sam2_size // 4] * 2, [sam2_size // 8] * 2,
                                        [sam2_size // 16] * 2],
                fpn_hidden_size=c),
            prompt_encoder_config=dict(
                hidden_size=c, image_size=sam2_size, patch_size=16, mask_input_channels=8),
            mask_decoder_config=dict(
                hidden_size=c,
                mlp_dim=128,
                num_attention_heads=2,
                iou_head_hidden_dim=64,
                dynamic_multimask_via_stability=False),
            memory_attention_hidden_size=c,
            memory_attention_num_layers=1,
            memory_attention_feed_forward_hidden_size=128,
            memory_attention_rope_feat_sizes=[sam2_size // 16] * 2,
            memory_encoder_hidden_size=c,
            memory_encoder_output_channels=64,
            mask_downsampler_embed_dim=c,
            memory_fuser_num_layers=1,
            memory_fuser_embed_dim=c,
            memory_fuser_intermediate_dim=128,
            num_maskmem=3,
            enable_temporal_pos_encoding_for_object_pointers=False,
            enable_occlusion_spatial_embedding=False)),
    # from scratch, SAM 2's object score must learn "visible" (official: a trained SAM 2)
    bbox_head=dict(loss_object=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)))

# frames resized to SAM 2's square input without keeping the aspect ratio (official)
train_pipeline = [
    dict(type='ClipSample', num_frames=5, local_range=3, reverse_prob=0.0),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadRVOSFrame'),
            dict(type='LoadRVOSAnnotations'),
            dict(type='RVOSRandomFlip', prob=0.5),
            dict(type='Resize', scale=(sam2_size, sam2_size), keep_ratio=False),
            dict(
                type='RVOSPhotoMetricDistortion',
                brightness_delta=32,
                contrast_range=(0.8, 1.2),
                saturation_range=(0.8, 1.2),
                hue_delta=0),
        ]),
    dict(type='FilterClipWithoutTarget'),
    dict(type='PackRVOSInputs'),
]
test_pipeline = [
    dict(type='ClipSample', test_mode=True),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadRVOSFrame'),
            dict(type='Resize', scale=(sam2_size, sam2_size), keep_ratio=False),
            dict(type='LoadRVOSAnnotations'),
        ]),
    dict(type='PackRVOSInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 1500
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=1.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[int(max_iters * 0.8)],
        gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=2)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=2),
    visualization=dict(type='RVOSVisualizationHook', draw=False))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))

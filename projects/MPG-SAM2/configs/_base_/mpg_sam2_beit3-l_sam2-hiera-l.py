# MPG-SAM 2, official sizes (rongfu-dsb/MPG-SAM2 @ 54291e0: models/evf_sam.py,
# sam2_configs/sam2_hiera_l.yaml, models/unilm/beit3/modeling_utils.py): BEiT-3 large
# (D=1024, 24 layers, 16 heads, 224x224 input, vocabulary 64010) and SAM 2 (not 2.1) Hiera-L at
# 1024x1024 with the image encoder frozen; mask prior generator and aggregator with 8 heads.
# Loss weights focal/dice/sim = 2/5/2.
# The tokenizer folder is the official release's (XLM-R sentencepiece of BEiT-3); the weights
# come from tools/model_converters/mpg_sam2_to_mmrvos.py (release, or SAM 2 + BEiT-3 for
# training from the public initialisations).
sam2_size = 1024
beit_size = 224
model = dict(
    type='MPGSAM2',
    data_preprocessor=dict(
        type='TrackDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1),
    tokenizer='checkpoints/mpg_sam2/tokenizer',
    max_text_length=64,
    multimodal_encoder=dict(
        type='BEiT3',
        embed_dims=1024,
        num_heads=16,
        num_layers=24,
        ffn_dims=4096,
        img_size=beit_size,
        patch_size=16,
        vocab_size=64010,
        max_text_positions=1024),
    mask_prior_generator=dict(type='MaskPriorGenerator', num_heads=8, ffn_dims=4096, dropout=0.1),
    tracker=dict(
        type='MPGSam2Tracker',
        freeze_image_encoder=True,
        aggregator=dict(num_heads=8, ffn_dims=1024, dropout=0.1, patch_merge=2),
        # transformers' Sam2VideoConfig for sam2_hiera_large (SAM 2, not 2.1: no temporal
        # encoding of object pointers, no occlusion embedding); defaults are Hiera-L's
        config=dict(
            image_size=sam2_size,
            vision_config=dict(
                backbone_config=dict(
                    hidden_size=144,
                    num_attention_heads=2,
                    blocks_per_stage=[2, 6, 36, 4],
                    embed_dim_per_stage=[144, 288, 576, 1152],
                    num_attention_heads_per_stage=[2, 4, 8, 16],
                    window_size_per_stage=[8, 4, 16, 8],
                    global_attention_blocks=[23, 33, 43],
                    window_positional_embedding_background_size=[7, 7],
                    image_size=[sam2_size, sam2_size]),
                backbone_channel_list=[1152, 576, 288, 144],
                backbone_feature_sizes=[[sam2_size // 4] * 2, [sam2_size // 8] * 2,
                                        [sam2_size // 16] * 2]),
            prompt_encoder_config=dict(image_size=sam2_size),
            mask_decoder_config=dict(dynamic_multimask_via_stability=False),
            memory_attention_rope_feat_sizes=[sam2_size // 16] * 2,
            enable_temporal_pos_encoding_for_object_pointers=False,
            enable_occlusion_spatial_embedding=False)),
    bbox_head=dict(type='MPGSAM2Head'),
    test_cfg=dict(mask_thr=0.5, chunk_size=None))

# The model's input (official datasets/ytvos.py, mevis.py): every frame resized to SAM 2's
# square input without keeping the aspect ratio; training adds a shared flip and photometric
# distortion. Dataset configs take the whole pipelines (mpg_sam2_train_pipeline, 5 frames) or
# wrap the transforms in their own clip sampling; the test pipeline is the same for every dataset.
mpg_sam2_train_transforms = dict(
    type='TransformBroadcaster',
    share_random_params=True,
    transforms=[
        dict(type='LoadRVOSFrame'),
        dict(type='LoadRVOSAnnotations'),
        dict(type='RVOSRandomFlip', prob=0.5),
        dict(
            type='RVOSPhotoMetricDistortion',
            brightness_delta=32,
            contrast_range=(0.8, 1.2),
            saturation_range=(0.8, 1.2),
            hue_delta=0),
        dict(type='Resize', scale=(sam2_size, sam2_size), keep_ratio=False),
    ])
# the Ref-YouTube-VOS recipe (5-frame clips; Ref-DAVIS17 uses the same); MeViS samples 8
mpg_sam2_train_pipeline = [
    dict(type='ClipSample', num_frames=5, local_range=3, reverse_prob=0.0),
    mpg_sam2_train_transforms,
    dict(type='FilterClipWithoutTarget'),
    dict(type='PackRVOSInputs'),
]
mpg_sam2_test_pipeline = [
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

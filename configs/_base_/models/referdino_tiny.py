# A tiny ReferDINO for tests and CPU demos. Grounding DINO hard-codes a 256-d text position
# embedding, so the transformer keeps d=256 and shrinks depth, queries, FFNs and the backbone;
# the text model is the offline tiny BERT shipped under tests/data/tiny_bert.
_base_ = './referdino_swin-t.py'
embed_dims = 256

model = dict(
    num_queries=24,
    # the toy recipe keeps mmdet's padding of every input to a multiple of 32 (train and test)
    data_preprocessor=dict(pad_size_divisor=32, train_pad_size_divisor=32),
    language_model=dict(name='{{fileDirname}}/../../../tests/data/tiny_bert'),
    backbone=dict(
        embed_dims=32,
        depths=[1, 1, 1, 1],
        num_heads=[1, 2, 4, 8],
        window_size=4,
        drop_path_rate=0.0),
    neck=dict(in_channels=[64, 128, 256]),
    encoder=dict(
        num_layers=1,
        layer_cfg=dict(
            self_attn_cfg=dict(num_levels=4, num_points=2),
            ffn_cfg=dict(feedforward_channels=256)),
        text_layer_cfg=dict(ffn_cfg=dict(feedforward_channels=256)),
        # mmdet's fusion dropout (0.1, no drop path), as the toy recipe was trained with
        fusion_layer_cfg=dict(embed_dim=256, dropout=0.1, drop_path=0.0)),
    decoder=dict(
        num_layers=3,
        drop_rate=0.5,
        layer_cfg=dict(
            cross_attn_cfg=dict(num_points=2),
            ffn_cfg=dict(feedforward_channels=256))),
    pixel_decoder=dict(stride4_channels=32),
    # extensions of the official enhancer (off in the full-size configs): the toy's motion
    # expressions pair the target with a pixel-identical look-alike, so the tracker also
    # matches on box position and the temporal decoder gets a trajectory (box + velocity)
    # embedding (the official decoder sees neither frame order nor boxes); its output is
    # blended in through a gate that starts at 0, so clip training starts from the
    # single-frame model's predictions
    temporal_enhancer=dict(
        tracker=dict(box_weight=5.0),
        temporal_decoder=dict(num_layers=1, motion_embed=True, zero_init_gate=True)),
    bbox_head=dict(
        # trained from scratch: normalise the contrastive logits by sqrt(d) and start them at
        # a prior of 0.01 (learnable bias), instead of the unnormalised dot product of the
        # pretrained model whose logits start around 1e2-1e3
        contrastive_cfg=dict(max_text_len=256, log_scale='auto', bias=True),
        mask_decoder=dict(
            num_layers=1,
            layer_cfg=dict(
                cross_attn_cfg=dict(num_points=4),
                ffn_cfg=dict(feedforward_channels=256)))),
    test_cfg=dict(chunk_size=8),
    # trained from scratch on CPU: no LoRA, everything trainable
    lora=None,
    trainable=None)

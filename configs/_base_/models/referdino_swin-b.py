# ReferDINO, Swin-B + BERT-base (official sizes; see referdino_swin-t.py).
_base_ = './referdino_swin-t.py'

model = dict(
    backbone=dict(
        pretrain_img_size=384,
        embed_dims=128,
        depths=[2, 2, 18, 2],
        num_heads=[4, 8, 16, 32],
        window_size=12,
        drop_path_rate=0.2),  # official SwinTransformer default for Swin-B too
    neck=dict(in_channels=[256, 512, 1024]),
    pixel_decoder=dict(stride4_channels=128))

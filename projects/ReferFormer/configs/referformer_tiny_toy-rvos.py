# Tiny ReferFormer for tests, CPU demos and tools/analysis_tools/compare_systems.py on the
# synthetic toy benchmark (python tools/make_toy_dataset.py data/toy_rvos): a ResNet-18 of
# width 16, d=64, 1+2 transformer layers, the offline tiny RoBERTa
# (projects/ReferFormer/tools/make_tiny_roberta.py). Same toy recipe as
# configs/referdino/referdino_tiny_1xb2_toy-rvos.py.
_base_ = [
    './_base_/referformer_r50.py', '../../../configs/_base_/datasets/toy_rvos.py',
    '../../../configs/_base_/default_runtime.py'
]
custom_imports = dict(
    imports=['mmrvos', 'projects.ReferFormer.referformer'], allow_failed_imports=False)
d = 64
mask_dim = 16
model = dict(
    backbone=dict(
        depth=18,
        base_channels=16,
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128], out_channels=d, norm_cfg=dict(type='GN', num_groups=8)),
    text_encoder=dict(name='{{fileDirname}}/../tests/data/tiny_roberta', out_dims=d),
    fusion_heads=4,
    encoder=dict(
        num_layers=1,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=d, num_heads=4, num_points=2, dropout=0.0),
            ffn_cfg=dict(embed_dims=d, feedforward_channels=128, ffn_drop=0.0))),
    decoder=dict(
        num_layers=2,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=d, num_heads=4, dropout=0.0),
            cross_attn_cfg=dict(embed_dims=d, num_heads=4, num_points=2, dropout=0.0),
            ffn_cfg=dict(embed_dims=d, feedforward_channels=128, ffn_drop=0.0))),
    positional_encoding=dict(num_feats=d // 2),
    cm_fpn=dict(
        in_channels=[16, d, d, d],
        conv_channels=d,
        mask_channels=mask_dim,
        num_heads=4,
        feedforward_channels=128),
    bbox_head=dict(embed_dims=d, mask_head=dict(embed_dims=d, in_channels=mask_dim)))

max_iters = 2000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2))
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

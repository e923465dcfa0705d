# Tiny ReferDINO trained from scratch on the synthetic toy benchmark (CPU demo scale).
# Generate the data first: python tools/make_toy_dataset.py data/toy_rvos
_base_ = [
    '../_base_/models/referdino_tiny.py', '../_base_/datasets/toy_rvos.py',
    '../_base_/default_runtime.py'
]

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
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.8)], gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=2)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=2),
    visualization=dict(type='DetVisualizationHook', draw=False))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))

# CPU budget: 4-frame clips at the benchmark's native 160x128 (motion needs >= 2 frames)
train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='ClipSample', num_frames=4, local_range=3, reverse_prob=0.0),
        dict(type='TransformBroadcaster', share_random_params=True,
             transforms=[
                 dict(type='LoadRVOSFrame'),
                 dict(type='LoadRVOSAnnotations'),
                 dict(type='RVOSRandomFlip', prob=0.5),
                 dict(type='Resize', scale=(160, 128), keep_ratio=True),
                 dict(type='RVOSPhotoMetricDistortion', brightness_delta=32,
                      contrast_range=(0.8, 1.2), saturation_range=(0.8, 1.2), hue_delta=0),
             ]),
        dict(type='FilterClipWithoutTarget'),
        dict(type='PackRVOSInputs'),
    ]))

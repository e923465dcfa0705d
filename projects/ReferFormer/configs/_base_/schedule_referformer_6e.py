# ReferFormer schedule (official scripts): AdamW lr 1e-4, backbone 5e-5, weight decay 5e-4,
# gradient clipping 0.1, 6 epochs with lr x0.1 after epochs 3 and 5 (Ref-YouTube-VOS, A2D).
max_epochs = 6
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=5e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.5)}))
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[3, 5], gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=8)

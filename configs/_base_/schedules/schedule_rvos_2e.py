# ReferDINO fine-tuning schedule (official code): AdamW, lr 5e-5 for a total batch of 2
# (scaled by --auto-scale-lr), weight decay 1e-4, gradient clipping 0.1, MultiStepLR.
max_epochs = 2
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-5, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2))

param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[1],
         gamma=0.1)
]

auto_scale_lr = dict(enable=False, base_batch_size=2)

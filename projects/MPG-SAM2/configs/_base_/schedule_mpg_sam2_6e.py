# Official fine-tuning schedule (main.py, engine.py, pre_fine.sh): AdamW, lr 2e-6 and 5e-5 for
# the six new fusion modules (official names mask_linear, mask_product, vmtoken,
# mmfusion_module, objfusion_module, vtlfusion_module), weight decay 5e-4, gradient norm
# clipped at 0.1, constant learning rate (no schedule is built), 6 epochs, batch 1 clip per GPU.
max_epochs = 6
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-6, weight_decay=5e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(
        custom_keys={
            'mask_prior_generator.class_proj': dict(lr_mult=25.0),
            'mask_prior_generator.prior_head': dict(lr_mult=25.0),
            'mask_prior_generator.class_token_attn': dict(lr_mult=25.0),
            'aggregator.pixel_global_fusion': dict(lr_mult=25.0),
            'aggregator.object_global_fusion': dict(lr_mult=25.0),
            'aggregator.object_history_fusion': dict(lr_mult=25.0),
        }))
param_scheduler = []
auto_scale_lr = dict(enable=False, base_batch_size=8)

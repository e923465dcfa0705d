# Generate the data first: python tools/make_toy_dataset.py data/toy_rvos
# Tiny G-DINO+DH on the synthetic toy benchmark (CPU; tests and tools/analysis_tools/
# compare_systems.py). Same mask head and temporal setting as gdino-dh_swin-t_8xb1-2e_ref-ytvos.py:
# TemporalEnhancer without the tracker, with the temporal decoder (temporal self-attention).
_base_ = [
    '../_base_/models/referdino_tiny.py', '../_base_/datasets/toy_rvos.py',
    '../_base_/schedules/schedule_rvos_2e.py', '../_base_/default_runtime.py'
]
embed_dims = 256
model = dict(
    # the toy recipe's backbone (referdino_tiny_1xb2_toy-rvos.py)
    backbone=dict(depths=[2, 2, 2, 2], window_size=8),
    mask_reference='predicted',  # as the toy recipe (referdino_tiny_1xb2_toy-rvos.py)
    temporal_enhancer=dict(tracker=None),
    bbox_head=dict(
        token_reduce='mean',  # the toy recipe's class rule (referdino_tiny_1xb2_toy-rvos.py)
        mask_decoder=dict(
            _delete_=True, type='RVOSDynamicMaskHead', embed_dims=embed_dims,
            in_channels=embed_dims, reduced_channels=8, dynamic_channels=8,
            num_dynamic_layers=3, controller_layers=1, rel_coord=True)))

# the toy recipe of referdino_tiny_1xb2_toy-rvos.py (from scratch on CPU)
max_iters = 2000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=2e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.8)], gamma=0.1)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=2),
    visualization=dict(type='RVOSVisualizationHook', draw=False))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))

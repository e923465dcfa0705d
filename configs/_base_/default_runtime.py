default_scope = 'mmdet'
custom_imports = dict(imports=['mmrvos'], allow_failed_imports=False)
# mmengine's Runner whose checkpoint reads (load_from, resume, init_cfg Pretrained) unpickle
# with weights_only=True for every scheme (path, URL, torchvision:// ...); see
# mmrvos/engine/checkpoint.py. The 'mmdet.' prefix finds it before a default scope is set.
runner_type = 'mmdet.RVOSRunner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # draws video clips (TrackDataSample); tools/test.py --show-dir turns it on
    visualization=dict(type='RVOSVisualizationHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='RVOSLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False

custom_hooks = [dict(type='ParameterTableHook'), dict(type='RNGStateHook')]

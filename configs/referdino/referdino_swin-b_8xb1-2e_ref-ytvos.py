# ReferDINO, Swin-B, Ref-YouTube-VOS (paper J&F 69.3); schedule as the Swin-T config.
_base_ = [
    '../_base_/models/referdino_swin-b.py', '../_base_/datasets/ref_youtube_vos.py',
    '../_base_/schedules/schedule_rvos_2e.py', '../_base_/default_runtime.py'
]
load_from = None
auto_scale_lr = dict(enable=False, base_batch_size=2)

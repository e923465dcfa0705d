# ReferDINO, Swin-T, Ref-YouTube-VOS (paper J&F 67.5): 8 GPUs x 1 clip of 6 frames, 2 epochs,
# AdamW lr 5e-5 for a total batch of 2 (use --auto-scale-lr with other batch sizes),
# LoRA rank 32 on the frozen-backbone model, starting from the RefCOCO/+/g-pretrained model
# (convert it with tools/model_converters/referdino_to_mmrvos.py and set load_from).
_base_ = [
    '../_base_/models/referdino_swin-t.py', '../_base_/datasets/ref_youtube_vos.py',
    '../_base_/schedules/schedule_rvos_2e.py', '../_base_/default_runtime.py'
]
load_from = None  # e.g. 'checkpoints/referdino_swin-t_refcoco-mmrvos.pth'
auto_scale_lr = dict(enable=False, base_batch_size=2)

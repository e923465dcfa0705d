# MPG-SAM 2 (BEiT-3-L + SAM 2 Hiera-L) on Ref-YouTube-VOS (paper: J&F 73.9 valid, with
# RefCOCO/+/g pre-training). Official recipe (pre_fine.sh, datasets/ytvos.py): 5-frame clips,
# batch 1 per GPU on 8 GPUs, horizontal flip + photometric distortion, every frame resized to
# 1024x1024 without keeping the aspect ratio (BEiT-3 reads it at 224x224); test: the whole
# video in one pass. Start from a converted release (load_from) or from the converted public
# SAM 2 + BEiT-3 weights (projects/MPG-SAM2/tools/mpg_sam2_to_mmrvos.py).
_base_ = [
    './_base_/mpg_sam2_beit3-l_sam2-hiera-l.py',
    '../../../configs/_base_/datasets/ref_youtube_vos.py', './_base_/schedule_mpg_sam2_6e.py',
    '../../../configs/_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmrvos', 'projects.MPG-SAM2.mpg_sam2'], allow_failed_imports=False)
train_pipeline = {{_base_.mpg_sam2_train_pipeline}}
test_pipeline = {{_base_.mpg_sam2_test_pipeline}}
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

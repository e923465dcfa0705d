# MPG-SAM 2 on MeViS (paper: J&F 53.7 valid). Official recipe (finetune_mevis.sh,
# inference_mevis.py): 8-frame clips, 6 epochs; inference in independent chunks of 24 frames.
_base_ = [
    './_base_/mpg_sam2_beit3-l_sam2-hiera-l.py', '../../../configs/_base_/datasets/mevis.py',
    './_base_/schedule_mpg_sam2_6e.py', '../../../configs/_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmrvos', 'projects.MPG-SAM2.mpg_sam2'], allow_failed_imports=False)
model = dict(test_cfg=dict(chunk_size=24))
train_pipeline = [
    dict(type='ClipSample', num_frames=8, local_range=3, reverse_prob=0.0),
    {{_base_.mpg_sam2_train_transforms}},
    dict(type='FilterClipWithoutTarget'),
    dict(type='PackRVOSInputs'),
]
test_pipeline = {{_base_.mpg_sam2_test_pipeline}}
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

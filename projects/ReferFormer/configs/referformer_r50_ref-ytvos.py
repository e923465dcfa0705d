# ReferFormer R50 on Ref-YouTube-VOS (paper: J&F 55.6, 58.7 with joint RefCOCO training).
# Clips of 5 frames (official num_frames=5); the rest of the data pipeline is mmrvos'.
# Run from the repository root with PYTHONPATH=. so that projects.ReferFormer imports.
_base_ = [
    './_base_/referformer_r50.py', '../../../configs/_base_/datasets/ref_youtube_vos.py',
    './_base_/schedule_referformer_6e.py', '../../../configs/_base_/default_runtime.py'
]
custom_imports = dict(
    imports=['mmrvos', 'projects.ReferFormer.referformer'], allow_failed_imports=False)
# mmrvos' Ref-YouTube-VOS augmentation (configs/_base_/datasets/ref_youtube_vos.py), restated
# because an mmengine config cannot edit one entry of a base list

train_scales = [288, 320, 352, 392, 416, 448, 480, 512]
frame_loading = [dict(type='LoadRVOSFrame'), dict(type='LoadRVOSAnnotations')]
train_augment = [
    dict(type='RVOSRandomFlip', prob=0.5),
    dict(
        type='RVOSRandomChoice',  # mmcv RandomChoice, fixed for shared params
        transforms=[
            [
                dict(
                    type='RandomChoiceResize',
                    scales=[(640, s) for s in train_scales],
                    keep_ratio=True,
                    resize_type='mmdet.Resize'),
            ],
            [
                dict(
                    type='RandomChoiceResize',
                    scales=[(1333, s) for s in (400, 500, 600)],
                    keep_ratio=True,
                    resize_type='mmdet.Resize'),
                dict(type='RVOSRandomCrop', crop_type='absolute_range', crop_size=(384, 600)),
                dict(
                    type='RandomChoiceResize',
                    scales=[(640, s) for s in train_scales],
                    keep_ratio=True,
                    resize_type='mmdet.Resize'),
            ],
        ]),
    dict(
        type='RVOSPhotoMetricDistortion',
        brightness_delta=32,
        contrast_range=(0.8, 1.2),
        saturation_range=(0.8, 1.2),
        hue_delta=0),
]
train_pipeline = [
    dict(type='ClipSample', num_frames=5, local_range=3, reverse_prob=0.3),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=frame_loading + train_augment),
    dict(type='FilterClipWithoutTarget'),
    dict(type='PackRVOSInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# official: start from the RefCOCO/+/g-pretrained weights (load_from=...)

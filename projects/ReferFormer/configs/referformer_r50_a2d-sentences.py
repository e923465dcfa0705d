# ReferFormer R50 on A2D-Sentences (paper Table 2 reports Video-Swin backbones: mAP 52.8
# Video-Swin-T, 55.0 Video-Swin-B). Training clips of 5 frames around the annotated key frame
# (only that frame is supervised: the others are 'not annotated'), as the official code.
# Run from the repository root with PYTHONPATH=. so that projects.ReferFormer imports.
_base_ = [
    './_base_/referformer_r50.py', '../../../configs/_base_/datasets/a2d_sentences.py',
    './_base_/schedule_referformer_6e.py', '../../../configs/_base_/default_runtime.py'
]
custom_imports = dict(
    imports=['mmrvos', 'projects.ReferFormer.referformer'], allow_failed_imports=False)
train_scales = [288, 320, 352, 392, 416, 448, 480, 512]
train_pipeline = [
    dict(type='ClipSample', num_frames=5, local_range=3, reverse_prob=0.3),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadRVOSFrame'),
            dict(type='LoadRVOSAnnotations'),
            dict(type='RVOSRandomFlip', prob=0.5),
            dict(
                type='RandomChoiceResize',
                scales=[(640, s) for s in train_scales],
                keep_ratio=True,
                resize_type='mmdet.Resize'),
            dict(
                type='RVOSPhotoMetricDistortion',
                brightness_delta=32,
                contrast_range=(0.8, 1.2),
                saturation_range=(0.8, 1.2),
                hue_delta=0),
        ]),
    dict(type='FilterClipWithoutTarget'),
    dict(type='PackRVOSInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
# A2D is scored with mAP over all query sequences: keep every sequence with its score
model = dict(test_cfg=dict(select='all'))

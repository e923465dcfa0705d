# Synthetic toy RVOS benchmark (tools/make_toy_dataset.py data/toy_rvos): 160x128 frames,
# 10 frames per video, Ref-YouTube-VOS layout, dense annotation (an object missing from a
# frame's PNG has left the frame: annotated, not valid). Small scales so that a tiny model
# trains on CPU; the flip swaps left/right in "on the left" and "moving left" alike.
# Two departures from the paper's augmentation, because the toy's words depend on them:
# no clip reversal (a reversed clip shows "moving up" as moving down, and the motion target's
# distractor looks identical). Hue is not jittered in any config (as in the official code).
dataset_type = 'RefYouTubeVOSDataset'
data_root = 'data/toy_rvos/'

train_pipeline = [
    dict(type='ClipSample', num_frames=6, local_range=3, reverse_prob=0.0),
    dict(type='TransformBroadcaster', share_random_params=True,
         transforms=[
             dict(type='LoadRVOSFrame'),
             dict(type='LoadRVOSAnnotations'),
             dict(type='RVOSRandomFlip', prob=0.5),
             dict(type='RandomChoiceResize', scales=[(192, 112), (192, 128), (192, 144)],
                  keep_ratio=True, resize_type='mmdet.Resize'),
             dict(type='RVOSPhotoMetricDistortion', brightness_delta=32, contrast_range=(0.8, 1.2),
                  saturation_range=(0.8, 1.2), hue_delta=0),
         ]),
    dict(type='FilterClipWithoutTarget'),
    dict(type='PackRVOSInputs'),
]
test_pipeline = [
    dict(type='ClipSample', test_mode=True),
    dict(type='TransformBroadcaster', share_random_params=True,
         transforms=[
             dict(type='LoadRVOSFrame'),
             dict(type='Resize', scale=(192, 128), keep_ratio=True),
             dict(type='LoadRVOSAnnotations'),
         ]),
    dict(type='PackRVOSInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='meta_expressions/train/meta_expressions.json',
        meta_file='train/meta.json',
        data_prefix=dict(img='train/JPEGImages', ann='train/Annotations'),
        sparse_annotations=False,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='meta_expressions/valid/meta_expressions.json',
        meta_file='valid/meta.json',
        data_prefix=dict(img='valid/JPEGImages', ann='valid/Annotations'),
        sparse_annotations=False,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='RVOSMetric',
    data_root=data_root,
    meta_file='meta_expressions/valid/meta_expressions.json',
    ann_dir='valid/Annotations')
test_evaluator = val_evaluator

# RefCOCO/+/g as 1-frame clips for ReferDINO's image pretraining (20 epochs). For rotated
# pseudo-clips set num_frames > 1 and uncomment the per-frame (non-shared) rotation.
dataset_type = 'RefCOCOClipDataset'
data_root = 'data/coco/'

train_scales = [288, 320, 352, 392, 416, 448, 480, 512]
train_pipeline = [
    dict(type='ClipSample', num_frames=1, reverse_prob=0.0),
    dict(type='TransformBroadcaster', share_random_params=True,
         transforms=[
             dict(type='LoadRVOSFrame'),
             dict(type='LoadRVOSAnnotations'),
             dict(type='RVOSRandomFlip', prob=0.5),
             dict(type='RandomChoiceResize', scales=[(640, s) for s in train_scales],
                  keep_ratio=True, resize_type='mmdet.Resize'),
             dict(type='RVOSPhotoMetricDistortion', brightness_delta=32, contrast_range=(0.8, 1.2),
                  saturation_range=(0.8, 1.2), hue_delta=0),
         ]),
    # dict(type='TransformBroadcaster', share_random_params=False,
    #      transforms=[dict(type='Rotate', prob=1.0, min_mag=0.0, max_mag=15.0)]),
    dict(type='FilterClipWithoutTarget'),
    dict(type='PackRVOSInputs'),
]
test_pipeline = [
    dict(type='ClipSample', test_mode=True),
    dict(type='TransformBroadcaster', share_random_params=True,
         transforms=[
             dict(type='LoadRVOSFrame'),
             dict(type='Resize', scale=(640, 360), keep_ratio=True),
             dict(type='LoadRVOSAnnotations'),
         ]),
    dict(type='PackRVOSInputs'),
]


def _refexp(name, split, pipeline, test_mode=False):
    return dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=f'{name}/instances_{name}_{split}.json',
        data_prefix=dict(img='train2014'),
        test_mode=test_mode,
        pipeline=pipeline)


train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            _refexp('refcoco', 'train', train_pipeline),
            _refexp('refcoco+', 'train', train_pipeline),
            _refexp('refcocog', 'train', train_pipeline),
        ]))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_refexp('refcoco', 'val', test_pipeline, test_mode=True))
test_dataloader = val_dataloader
# the referring-image metric (oIoU / mIoU on 1-frame clips) is the A2D one
val_evaluator = dict(type='A2DMetric')
test_evaluator = val_evaluator

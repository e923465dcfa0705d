# A2D-Sentences (MTTR JSON + h5 masks). ReferDINO trains with 1-frame clips of the annotated
# frame (A2D/JHMDB T=1; raise num_frames for temporal context: the key frame is always the
# annotated one) and evaluates on a window centred on the annotated frame.
dataset_type = 'A2DSentencesDataset'
data_root = 'data/a2d_sentences/'

train_scales = [288, 320, 352, 392, 416, 448, 480, 512]
train_pipeline = [
    dict(type='ClipSample', num_frames=1, local_range=3, reverse_prob=0.3),
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
    dict(type='FilterClipWithoutTarget'),
    dict(type='PackRVOSInputs'),
]
test_pipeline = [
    dict(type='ClipSample', test_mode=True, test_window=1),
    dict(type='TransformBroadcaster', share_random_params=True,
         transforms=[
             dict(type='LoadRVOSFrame'),
             # official: RandomResize([360], max_size=640) (PIL bilinear, DETR size rule)
             dict(type='ShortSideResize', scale=360, max_size=640),
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
        ann_file='a2d_sentences_single_frame_train_annotations.json',
        # as the official code: decode Release/clips320H/<vid>.mp4 ('jpg' reads extracted
        # frames instead: faster, but re-encoded pixels)
        frame_source='mp4',
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
        ann_file='a2d_sentences_single_frame_test_annotations.json',
        frame_source='mp4',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='A2DMetric')
test_evaluator = val_evaluator

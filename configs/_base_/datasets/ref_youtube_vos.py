# Ref-YouTube-VOS (PAPER_NOTES "Training"): T=6 clips (key + 2 local + 3 global frames,
# reversed with p=0.3), one set of random parameters per clip (TransformBroadcaster with
# share_random_params=True), hflip that swaps left/right in the sentence, short side
# random {288..512} with long side <= 640 or resize + random crop, photometric distortion
# with the official code's ranges (brightness 32, contrast and saturation 0.8-1.2, no hue;
# channel swaps, which the official code does with p=0.2 and mmdet's PhotoMetricDistortion
# with p=0.5, are off: they change the colours the sentences name);
# test: the whole video, short side 360 with the official evaluation's rule (torchvision
# T.Resize(360) on a PIL image: long side truncated, not capped; PIL bilinear), no padding.
# Normalisation (and the training batches' padding to a multiple of 32) is done by the model's
# RVOSDataPreprocessor.
dataset_type = 'RefYouTubeVOSDataset'
data_root = 'data/ref-youtube-vos/'

train_scales = [288, 320, 352, 392, 416, 448, 480, 512]
frame_loading = [dict(type='LoadRVOSFrame'), dict(type='LoadRVOSAnnotations')]
train_augment = [
    dict(type='RVOSRandomFlip', prob=0.5),
    dict(
        type='RVOSRandomChoice',  # mmcv RandomChoice, fixed for shared params
        transforms=[
            [
                dict(type='RandomChoiceResize', scales=[(640, s) for s in train_scales],
                     keep_ratio=True, resize_type='mmdet.Resize'),
            ],
            [
                dict(type='RandomChoiceResize', scales=[(1333, s) for s in (400, 500, 600)],
                     keep_ratio=True, resize_type='mmdet.Resize'),
                dict(type='RVOSRandomCrop', crop_type='absolute_range', crop_size=(384, 600)),
                dict(type='RandomChoiceResize', scales=[(640, s) for s in train_scales],
                     keep_ratio=True, resize_type='mmdet.Resize'),
            ],
        ]),
    dict(type='RVOSPhotoMetricDistortion', brightness_delta=32, contrast_range=(0.8, 1.2),
         saturation_range=(0.8, 1.2), hue_delta=0),
]
train_pipeline = [
    dict(type='ClipSample', num_frames=6, local_range=3, reverse_prob=0.3),
    dict(type='TransformBroadcaster', share_random_params=True,
         transforms=frame_loading + train_augment),
    dict(type='FilterClipWithoutTarget'),
    dict(type='PackRVOSInputs'),
]
# mmdet convention: annotations (when present) are loaded after Resize, at the original size
test_pipeline = [
    dict(type='ClipSample', test_mode=True),
    dict(type='TransformBroadcaster', share_random_params=True,
         transforms=[
             dict(type='LoadRVOSFrame'),
             dict(type='ShortSideResize', scale=360),
             dict(type='LoadRVOSAnnotations'),
         ]),
    dict(type='PackRVOSInputs'),
]

train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='meta_expressions/train/meta_expressions.json',
        meta_file='train/meta.json',
        data_prefix=dict(img='train/JPEGImages', ann='train/Annotations'),
        pipeline=train_pipeline))
# valid = the competition valid file minus its test videos (202 videos); no public masks:
# predictions are written as PNGs and zipped for the server.
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
        exclude_ann_file='meta_expressions/test/meta_expressions.json',
        expected_num_videos=202,
        data_prefix=dict(img='valid/JPEGImages', ann=None),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='RVOSMetric',
    format_only=True,
    outfile_dir='work_dirs/ref_youtube_vos_valid/Annotations',
    zip_file='work_dirs/ref_youtube_vos_valid/submission.zip',
    zip_root='ref_youtube_vos')
test_evaluator = val_evaluator

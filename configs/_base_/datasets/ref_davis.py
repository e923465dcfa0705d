# Ref-DAVIS17 converted to the Ref-YouTube-VOS layout by
# tools/dataset_converters/davis_to_ytvos.py. ReferDINO evaluates the Ref-YouTube-VOS model on
# the 30 valid videos (4 annotator expressions per object scored apart, J&F averaged over the
# four); the train split is available for fine-tuning (Swin-T uses T=3 clips).
_base_ = './ref_youtube_vos.py'

dataset_type = 'RefDAVISDataset'
train_scales = [288, 320, 352, 392, 416, 448, 480, 512]
data_root = 'data/ref-davis/'

train_pipeline = [
    dict(type='ClipSample', num_frames=3, local_range=3, reverse_prob=0.3),
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
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='meta_expressions/train/meta_expressions.json',
        meta_file='train/meta.json',
        data_prefix=dict(img='train/JPEGImages', ann='train/Annotations'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='meta_expressions/valid/meta_expressions.json',
        meta_file='valid/meta.json',
        data_prefix=dict(img='valid/JPEGImages', ann='valid/Annotations'),
        test_mode=True,
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,
    type='RVOSMetric',
    data_root=data_root,
    meta_file='meta_expressions/valid/meta_expressions.json',
    ann_dir='valid/Annotations',
    use_annotators=True)
test_evaluator = val_evaluator

# MeViS: multi-object targets (union), masks as RLE in mask_dict.json. Same clip sampling and
# augmentation as Ref-YouTube-VOS; valid_u has masks (local J&F), valid is scored by the server.
_base_ = './ref_youtube_vos.py'

dataset_type = 'MeViSDataset'
data_root = 'data/mevis/'

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='train/meta_expressions.json',
        mask_file='train/mask_dict.json',
        data_prefix=dict(img='train/JPEGImages'),
        min_frames=2,
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='valid_u/meta_expressions.json',
        mask_file='valid_u/mask_dict.json',
        data_prefix=dict(img='valid_u/JPEGImages'),
        test_mode=True,
        pipeline={{_base_.test_pipeline}}))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='valid/meta_expressions.json',
        data_prefix=dict(img='valid/JPEGImages'),
        test_mode=True,
        pipeline={{_base_.test_pipeline}}))
val_evaluator = dict(
    _delete_=True,
    type='RVOSMetric',
    data_root=data_root,
    meta_file='valid_u/meta_expressions.json',
    mask_dict_file='valid_u/mask_dict.json')
test_evaluator = dict(
    type='RVOSMetric',
    format_only=True,
    outfile_dir='work_dirs/mevis_valid/results',
    zip_file='work_dirs/mevis_valid/submission.zip',
    zip_root='mevis')

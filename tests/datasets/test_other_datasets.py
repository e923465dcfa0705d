"""MeViS, A2D-Sentences, JHMDB-Sentences and RefCOCO clips on small fixtures written here in
the datasets' real on-disk formats (JPEG/PNG frames, mask_dict RLE JSON, h5, .mat, COCO JSON)."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from pycocotools import mask as mask_utils
from rvos_dataset_helpers import make_test_pipeline, make_train_pipeline, write_json

from mmrvos.datasets import (A2DSentencesDataset, DatasetRepairWarning, JHMDBSentencesDataset,
                             MeViSDataset, RefCOCOClipDataset)

H, W = 32, 48


def _frame(seed):
    return np.random.RandomState(seed).randint(0, 255, (H, W, 3)).astype(np.uint8)


def _rect(y1, y2, x1, x2):
    m = np.zeros((H, W), np.uint8)
    m[y1:y2, x1:x2] = 1
    return m


def _rle(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


# ---------------------------------------------------------------- MeViS
@pytest.fixture
def mevis_root(tmp_path):
    root = str(tmp_path)
    frames = [f'{t:05d}' for t in range(5)]
    for vid in ('v1', 'v2'):
        os.makedirs(osp.join(root, 'train/JPEGImages', vid))
        for t, f in enumerate(frames):
            cv2.imwrite(osp.join(root, 'train/JPEGImages', vid, f + '.jpg'), _frame(t))
    a = [_rle(_rect(2, 6, 2, 8 + t)) for t in range(5)]
    b = [_rle(_rect(20, 25, 30, 40)) if t < 3 else None for t in range(5)]
    a[4] = None  # both objects absent on the last frame
    write_json(osp.join(root, 'train/mask_dict.json'), {'10': a, '11': b, '12': [None] * 5})
    exps = {
        'v1': {
            '0': dict(exp='the two  Cats', obj_id=[1, 2], anno_id=[10, 11]),
            '1': dict(exp='the cat moving right', obj_id=[1], anno_id=[10])
        },
        'v2': {
            '0': dict(exp='nothing here', obj_id=[3], anno_id=[12])
        }
    }
    write_json(
        osp.join(root, 'train/meta_expressions.json'),
        dict(videos={
            v: dict(expressions=e, frames=frames)
            for v, e in exps.items()
        }))
    return root


def mevis(root, **kwargs):
    kwargs.setdefault('mask_file', 'train/mask_dict.json')
    kwargs.setdefault('pipeline', [])
    return MeViSDataset(
        data_root=root,
        ann_file='train/meta_expressions.json',
        data_prefix=dict(img='train/JPEGImages'),
        **kwargs)


def test_mevis_multi_object_union(mevis_root):
    ds = mevis(mevis_root, test_mode=True)  # evaluation keeps the all-absent expression
    assert len(ds) == 3
    info = ds.get_data_info(0)
    assert info['text'] == 'the two cats' and info['obj_ids'] == [1, 2]
    assert info['mask_refs'][0]['type'] == 'rle' and len(info['mask_refs'][0]['rles']) == 2
    sample = make_test_pipeline(scale=(W, H))(info)['data_samples']
    for t, f in enumerate(sample.video_data_samples):
        gt = f.gt_instances
        assert gt.annotated.item()  # MeViS is densely annotated
        expected = _rect(2, 6, 2, 8 + t) | (_rect(20, 25, 30, 40) if t < 3 else 0)
        if t == 4:
            expected = np.zeros((H, W), np.uint8)
        assert np.array_equal(gt.masks.masks[0], expected)
        assert gt.valid.item() == (t < 4)
    box = sample.video_data_samples[0].gt_instances.bboxes[0].tolist()
    assert box == [2.0, 2.0, 40.0, 25.0]  # box of the union


def test_mevis_train_clip_and_valid_split(mevis_root):
    pipeline = make_train_pipeline(num_frames=4, crop=False).transforms
    # the all-absent expression would never yield a training clip: an error listing it ...
    with pytest.raises(
            ValueError,
            match=r"(?s)1 expression\(s\) would silently drop out of "
            r"training.*video 'v2' expression '0': every mask of anno_id"):
        mevis(mevis_root, pipeline=pipeline)
    # ... or, with strict=False, dropped with a warning giving the count
    with pytest.warns(DatasetRepairWarning, match=r"(?s)'v2'.*strict=False: 1 expression"):
        ds = mevis(mevis_root, pipeline=pipeline, strict=False)
    assert len(ds) == 2 and {ds.get_data_info(i)['video_id'] for i in range(2)} == {'v1'}
    np.random.seed(0)
    out = ds[1]
    assert out['inputs'].shape[:2] == (4, 3)
    valid = mevis(mevis_root, mask_file=None, test_mode=True)
    assert all(r is None for r in valid.get_data_info(0)['mask_refs'])
    with pytest.raises(ValueError, match='mask_file is required'):
        mevis(mevis_root, mask_file=None)


def test_mevis_bad_inputs(mevis_root):
    meta = osp.join(mevis_root, 'train/meta_expressions.json')
    import json
    data = json.load(open(meta))
    data['videos']['v2']['expressions']['0']['anno_id'] = [99]
    write_json(meta, data)
    with pytest.raises(KeyError, match=r'unknown anno_id 99 \(not in .*mask_dict\.json\)'):
        mevis(mevis_root)
    data['videos']['v2']['expressions']['0']['anno_id'] = [12]
    data['videos']['v2']['frames'] = data['videos']['v2']['frames'][:4]
    write_json(meta, data)
    with pytest.raises(ValueError, match=r'mask_dict\.json: anno_id 12 has 5 masks for the 4'):
        mevis(mevis_root)
    with open(osp.join(mevis_root, 'train/mask_dict.json'), 'w') as f:
        f.write('{"10": [')
    with pytest.raises(ValueError, match=r'mask_dict\.json is not valid JSON'):
        mevis(mevis_root)


# ---------------------------------------------------------------- A2D-Sentences
@pytest.fixture
def a2d_root(tmp_path):
    import h5py
    root = str(tmp_path)
    vid = 'vidA'
    os.makedirs(osp.join(root, 'Release/JPEGImages', vid))
    for i in range(1, 9):
        cv2.imwrite(osp.join(root, 'Release/JPEGImages', vid, f'{i:05d}.jpg'), _frame(i))
    ann_dir = osp.join(root, 'text_annotations/a2d_annotation_with_instances', vid)
    os.makedirs(ann_dir)
    with h5py.File(osp.join(ann_dir, '00003.h5'), 'w') as f:
        f['instance'] = np.array([1, 2])
        f['reMask'] = np.stack([_rect(1, 9, 2, 12).T, _rect(15, 30, 20, 44).T])  # (N, W, H)
    with h5py.File(osp.join(ann_dir, '00006.h5'), 'w') as f:
        f['instance'] = np.array([2])
        f['reMask'] = _rect(10, 20, 5, 9).T  # single instance: (W, H)
    rows = [['man jumping on the left', vid, 3, 1], ['dog running', vid, 3, 2],
            ['dog running', vid, 6, 2]]
    write_json(osp.join(root, 'a2d_sentences_single_frame_test_annotations.json'), rows)
    return root


def a2d(root, **kwargs):
    kwargs.setdefault('pipeline', [])
    return A2DSentencesDataset(
        data_root=root, ann_file='a2d_sentences_single_frame_test_annotations.json', **kwargs)


def test_a2d_h5_masks_and_window(a2d_root):
    ds = a2d(a2d_root, test_mode=True)
    assert len(ds) == 3
    info = ds.get_data_info(1)
    assert info['frame_ids'][0] == '00001' and len(info['frame_ids']) == 8
    assert info['key_frames'] == [2] and info['exp_id'] == '2_0'
    assert ds.get_data_info(0)['exp_id'] == '1'
    sample = make_test_pipeline(scale=(W, H), window=4)(info)['data_samples']
    assert [f.frame_id for f in sample.video_data_samples] == \
        ['00001', '00002', '00003', '00004']
    ann = [f.gt_instances.annotated.item() for f in sample.video_data_samples]
    assert ann == [False, False, True, False]
    assert np.array_equal(sample.video_data_samples[2].gt_instances.masks.masks[0],
                          _rect(15, 30, 20, 44))
    single = make_test_pipeline(scale=(W, H), window=1)(ds.get_data_info(2))['data_samples']
    assert single.video_data_samples[0].frame_id == '00006'
    assert np.array_equal(single.video_data_samples[0].gt_instances.masks.masks[0],
                          _rect(10, 20, 5, 9))


def test_a2d_training_clip_contains_the_annotated_frame(a2d_root):
    ds = a2d(a2d_root, pipeline=make_train_pipeline(num_frames=1, crop=False).transforms)
    np.random.seed(0)
    out = ds[0]
    assert out['inputs'].shape[0] == 1
    assert out['data_samples'].video_data_samples[0].frame_id == '00003'


def test_a2d_bad_inputs(a2d_root):
    import json
    path = osp.join(a2d_root, 'a2d_sentences_single_frame_test_annotations.json')
    rows = json.load(open(path))
    write_json(path, rows + [['cat', 'vidA', 3, 7]])
    ds = a2d(a2d_root)
    with pytest.raises(KeyError, match=r'00003\.h5: unknown instance id 7'):
        make_test_pipeline(window=1)(ds.get_data_info(3))
    write_json(path, rows + [['cat', 'vidA', 12, 1]])
    with pytest.raises(ValueError, match='frame 12 outside 1..8'):
        a2d(a2d_root)
    os.remove(osp.join(a2d_root, 'Release/JPEGImages/vidA/00004.jpg'))
    write_json(path, rows)
    with pytest.raises(FileNotFoundError, match=r'vidA/00004\.jpg'):
        a2d(a2d_root)


def test_a2d_frames_from_mp4(a2d_root):
    os.makedirs(osp.join(a2d_root, 'Release/clips320H'))
    path = osp.join(a2d_root, 'Release/clips320H/vidA.mp4')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 8, (W, H))
    if not writer.isOpened():
        pytest.skip('this OpenCV build cannot write mp4')
    for i in range(1, 9):
        writer.write(np.full((H, W, 3), 25 * i, np.uint8))
    writer.release()
    ds = a2d(a2d_root, frame_source='mp4', test_mode=True)
    info = ds.get_data_info(0)
    assert info['video_path'] == path and len(info['frame_ids']) == 8
    out = make_test_pipeline(scale=(W, H), window=3)(info)
    means = out['inputs'].float().mean(dim=(1, 2, 3)).tolist()
    assert [round(m / 25) for m in means] == [2, 3, 4]  # frames 2, 3, 4 (1-based)
    assert out['data_samples'].video_data_samples[1].gt_instances.annotated.item()


# ---------------------------------------------------------------- JHMDB-Sentences
@pytest.fixture
def jhmdb_root(tmp_path):
    import scipy.io
    root = str(tmp_path)
    frame_dir = osp.join(root, 'Rename_Images/pullup/vidJ')
    mask_dir = osp.join(root, 'puppet_mask/pullup/vidJ')
    os.makedirs(frame_dir)
    os.makedirs(mask_dir)
    for i in range(1, 7):
        cv2.imwrite(osp.join(frame_dir, f'{i:05d}.png'), _frame(i))
    part = np.stack([_rect(2 + t, 12 + t, 3, 20) for t in range(6)], axis=-1)  # (H, W, T)
    scipy.io.savemat(osp.join(mask_dir, 'puppet_mask.mat'), {'part_mask': part})
    rows = [[
        'vidJ', './jhmdb_sentences/Rename_Images/pullup/vidJ/00004.png',
        './jhmdb_sentences/puppet_mask/pullup/vidJ/puppet_mask.mat', 6, 'man pulling up'
    ]]
    write_json(osp.join(root, 'jhmdb_sentences_samples_metadata.json'), rows)
    return root


def jhmdb(root, **kwargs):
    return JHMDBSentencesDataset(
        data_root=root,
        ann_file='jhmdb_sentences_samples_metadata.json',
        pipeline=[],
        test_mode=True,
        **kwargs)


def test_jhmdb_mat_masks(jhmdb_root):
    ds = jhmdb(jhmdb_root)
    info = ds.get_data_info(0)
    assert info['img_paths'][0] == osp.join(jhmdb_root, 'Rename_Images/pullup/vidJ/00001.png')
    sample = make_test_pipeline(scale=(W, H), window=3)(info)['data_samples']
    assert [f.frame_id for f in sample.video_data_samples] == ['00003', '00004', '00005']
    gts = [f.gt_instances for f in sample.video_data_samples]
    assert [g.annotated.item() for g in gts] == [False, True, False]
    assert np.array_equal(gts[1].masks.masks[0], _rect(5, 15, 3, 20))
    dense = jhmdb(jhmdb_root, annotate_all_frames=True)
    sample = make_test_pipeline(scale=(W, H))(dense.get_data_info(0))['data_samples']
    assert all(f.gt_instances.valid.item() for f in sample.video_data_samples)
    assert np.array_equal(sample.video_data_samples[5].gt_instances.masks.masks[0],
                          _rect(7, 17, 3, 20))


def test_jhmdb_bad_inputs(jhmdb_root):
    os.remove(osp.join(jhmdb_root, 'puppet_mask/pullup/vidJ/puppet_mask.mat'))
    with pytest.raises(FileNotFoundError, match=r'puppet_mask\.mat'):
        jhmdb(jhmdb_root)
    write_json(
        osp.join(jhmdb_root, 'jhmdb_sentences_samples_metadata.json'),
        [['vidJ', 'x/00004.png', 'y.mat', 6, 'a']])
    with pytest.raises(ValueError, match="does not contain 'Rename_Images'"):
        jhmdb(jhmdb_root)


# ---------------------------------------------------------------- RefCOCO clips
@pytest.fixture
def refcoco_root(tmp_path):
    root = str(tmp_path)
    os.makedirs(osp.join(root, 'train2014'))
    cv2.imwrite(osp.join(root, 'train2014/COCO_train2014_000000000001.jpg'), _frame(1))
    poly = [[4.0, 4.0, 20.0, 4.0, 20.0, 16.0, 4.0, 16.0]]
    images = [
        dict(
            id=1,
            original_id=77,
            file_name='COCO_train2014_000000000001.jpg',
            height=H,
            width=W,
            caption='The left zebra'),
        dict(
            id=2,
            original_id=77,
            file_name='COCO_train2014_000000000001.jpg',
            height=H,
            width=W,
            caption='zebra on the right')
    ]
    anns = [
        dict(
            id=1,
            image_id=1,
            segmentation=poly,
            bbox=[4, 4, 16, 12],
            category_id=1,
            iscrowd=0,
            area=192),
        dict(
            id=2,
            image_id=2,
            segmentation=_rle(_rect(10, 30, 30, 46)),
            bbox=[30, 10, 16, 20],
            category_id=1,
            iscrowd=0,
            area=320)
    ]
    write_json(
        osp.join(root, 'refcoco/instances_refcoco_train.json'),
        dict(images=images, annotations=anns, categories=[dict(id=1, name='zebra')]))
    return root


def refcoco(root, **kwargs):
    return RefCOCOClipDataset(
        data_root=root, ann_file='refcoco/instances_refcoco_train.json', pipeline=[], **kwargs)


def test_refcoco_single_frame_clips(refcoco_root):
    ds = refcoco(refcoco_root)
    assert len(ds) == 2
    info = ds.get_data_info(0)
    assert info['video_id'] == '77' and info['exp_id'] == '1'
    assert info['frame_ids'] == ['COCO_train2014_000000000001']
    assert info['text'] == 'the left zebra'
    sample = make_test_pipeline(scale=(W, H))(info)['data_samples']
    gt = sample.video_data_samples[0].gt_instances
    assert gt.valid.item() and gt.masks.masks[0].sum() > 0
    x1, y1, x2, y2 = gt.bboxes[0].tolist()
    assert 3 <= x1 <= 5 and 3 <= y1 <= 5 and 19 <= x2 <= 21 and 15 <= y2 <= 17
    gt2 = make_test_pipeline(scale=(W, H))(ds.get_data_info(1))['data_samples'] \
        .video_data_samples[0].gt_instances
    assert np.array_equal(gt2.masks.masks[0], _rect(10, 30, 30, 46))


def test_refcoco_rotated_pseudo_clip(refcoco_root):
    pipeline = Compose([
        dict(type='ClipSample', num_frames=3, reverse_prob=0.0),
        dict(
            type='TransformBroadcaster',
            share_random_params=True,
            transforms=[dict(type='LoadRVOSFrame'),
                        dict(type='LoadRVOSAnnotations')]),
        dict(
            type='TransformBroadcaster',
            share_random_params=False,
            transforms=[dict(type='Rotate', prob=1.0, min_mag=5.0, max_mag=20.0)]),
        dict(type='PackRVOSInputs'),
    ])
    np.random.seed(0)
    out = pipeline(refcoco(refcoco_root).get_data_info(1))
    inputs, frames = out['inputs'], out['data_samples'].video_data_samples
    assert inputs.shape == (3, 3, H, W)
    assert not torch.equal(inputs[0], inputs[1]) and not torch.equal(inputs[1], inputs[2])
    masks = [f.gt_instances.masks.masks[0] for f in frames]
    assert all(m.any() for m in masks) and not np.array_equal(masks[0], masks[1])


def test_refcoco_bad_inputs(refcoco_root):
    import json
    path = osp.join(refcoco_root, 'refcoco/instances_refcoco_train.json')
    data = json.load(open(path))
    data['images'][1]['caption'] = ''
    write_json(path, data)
    with pytest.raises(ValueError, match=r"instances_refcoco_train\.json: image entry 2: empty"):
        refcoco(refcoco_root)
    data['images'][1]['caption'] = 'zebra'
    data['images'][1]['file_name'] = 'COCO_train2014_000000000009.jpg'
    write_json(path, data)
    with pytest.raises(FileNotFoundError, match=r'COCO_train2014_000000000009\.jpg'):
        refcoco(refcoco_root)

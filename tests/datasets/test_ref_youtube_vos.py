"""RefYouTubeVOSDataset / RefDAVISDataset on the real davis-judo fixture and on files in the
Ref-YouTube-VOS layout built here (toy generator), including every bad-input case."""
import os
import os.path as osp
import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from rvos_dataset_helpers import make_test_pipeline, make_train_pipeline, read_json, write_json

from mmrvos.datasets import DatasetRepairWarning, RefDAVISDataset, RefYouTubeVOSDataset
from mmrvos.datasets.synthetic import make_toy_rvos
from mmrvos.datasets.transforms import AnnotationRepairWarning
from rvos_test_utils import TINY_BERT

JUDO_ANNOTATED = {1: '00000', 2: '00005', 3: '00008', 4: '00013'}


def judo_dataset(root, cls=RefYouTubeVOSDataset, **kwargs):
    return cls(
        data_root=root,
        ann_file='meta_expressions.json',
        data_prefix=dict(img='JPEGImages', ann='Annotations'),
        pipeline=[],
        **kwargs)


# ---------------------------------------------------------------- real fixture
def test_judo_data_info_sparse(judo_root):
    ds = judo_dataset(judo_root)
    assert len(ds) == 4
    for idx in range(4):
        info = ds.get_data_info(idx)
        obj = info['obj_ids'][0]
        assert info['video_id'] == 'judo' and info['exp_id'] == str(idx)
        assert info['frame_ids'] == [f'{t:05d}' for t in range(16)]
        assert info['img_paths'][3] == osp.join(judo_root, 'JPEGImages', 'judo', '00003.jpg')
        has_png = [r is not None for r in info['mask_refs']]
        assert [info['frame_ids'][t] for t in range(16) if has_png[t]] == \
            ['00000', '00005', '00008', '00013']
        assert info['mask_refs'][0]['obj_ids'] == [obj] and info['mask_refs'][0]['sparse']
        assert info['annotator'] is None and info['exp_type'] is None
        assert info['text'] == info['text'].lower()


def test_judo_test_pipeline_sparse_annotation_and_853px_repair(judo_root):
    ds = judo_dataset(judo_root)
    pipeline = make_test_pipeline(scale=(854, 480))  # keep the original size
    with pytest.warns(AnnotationRepairWarning, match=r'00005\.png.*853x480.*854x480'):
        out = pipeline(ds.get_data_info(1))  # obj 2, annotated only on the 853-px PNG
    inputs, sample = out['inputs'], out['data_samples']
    assert inputs.shape == (16, 3, 480, 854) and inputs.dtype == torch.uint8
    assert sample.video_id == 'judo' and sample.exp_id == '1' and len(sample) == 16
    png = np.asarray(Image.open(osp.join(judo_root, 'Annotations', 'judo', '00005.png')))
    for t, frame in enumerate(sample.video_data_samples):
        gt = frame.gt_instances
        assert frame.frame_id == f'{t:05d}' and frame.frame_index == t
        assert frame.ori_shape == (480, 854) and frame.ori_video_length == 16
        if t == 5:
            assert gt.annotated.item() and gt.valid.item()
            mask = gt.masks.masks[0]
            assert mask.shape == (480, 854)
            assert np.array_equal(mask[:, :853], png == 2) and not mask[:, 853].any()
            ys, xs = np.nonzero(png == 2)
            assert gt.bboxes[0].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        else:
            # frames 0, 8, 13 have a PNG without id 2, the others no PNG: not annotated
            assert not gt.annotated.item() and not gt.valid.item()
            assert not gt.masks.masks.any() and not gt.bboxes.any()


def test_judo_every_object_annotated_on_its_frame_only(judo_root):
    ds = judo_dataset(judo_root)
    pipeline = make_test_pipeline()
    for idx in range(4):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            sample = pipeline(ds.get_data_info(idx))['data_samples']
        repairs = [w for w in caught if issubclass(w.category, AnnotationRepairWarning)]
        # every expression reads the 4 PNGs; the 853-px 00005.png is repaired once each time
        assert len(repairs) == 1 and '00005.png' in str(repairs[0].message)
        annotated = [
            f.frame_id for f in sample.video_data_samples if f.gt_instances.annotated.item()
        ]
        valid = [f.frame_id for f in sample.video_data_samples if f.gt_instances.valid.item()]
        assert annotated == valid == [JUDO_ANNOTATED[idx + 1]]
        frame = sample.video_data_samples[0]
        assert frame.img_shape == (360, 640)  # short side 360, long side <= 640
        assert frame.scale_factor == pytest.approx((640 / 854, 360 / 480), abs=2e-3)


def test_judo_strict_mask_size_is_an_error(judo_root):
    ds = judo_dataset(judo_root)
    from mmengine.dataset import Compose
    pipeline = Compose([
        dict(type='ClipSample', test_mode=True),
        dict(
            type='TransformBroadcaster',
            share_random_params=True,
            transforms=[
                dict(type='LoadRVOSFrame'),
                dict(type='LoadRVOSAnnotations', size_tolerance=0)
            ]),
    ])
    with pytest.raises(ValueError, match=r'00005\.png: mask size 853x480'):
        pipeline(ds.get_data_info(1))


def test_judo_ref_davis_annotators(judo_root):
    with pytest.warns(DatasetRepairWarning, match='annotator'):
        ds = judo_dataset(judo_root, RefDAVISDataset)
    assert [ds.get_data_info(i)['annotator'] for i in range(4)] == [0, 1, 2, 3]
    with pytest.warns(DatasetRepairWarning):
        only = judo_dataset(judo_root, RefDAVISDataset, annotators=[2])
    assert len(only) == 1 and only.get_data_info(0)['exp_id'] == '2'
    with pytest.warns(AnnotationRepairWarning, match=r'00005\.png'):
        sample = make_test_pipeline()(only.get_data_info(0))['data_samples']
    assert sample.annotator == 2
    assert all(f.annotator == 2 for f in sample.video_data_samples)


def test_judo_train_clip(judo_root):
    ds = judo_dataset(judo_root)
    np.random.seed(0)
    pipeline = make_train_pipeline(num_frames=6, crop=False, filter_empty=False)
    out = pipeline(ds.get_data_info(0))
    assert out['inputs'].shape[:2] == (6, 3)
    ids = [f.frame_index for f in out['data_samples'].video_data_samples]
    assert ids == sorted(ids) or ids == sorted(ids, reverse=True)


# ---------------------------------------------------------------- Ref-YTVOS layout built here
@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy'))
    make_toy_rvos(root, seed=1, num_train=4, num_valid=3, num_frames=8)
    return root


def toy_dataset(root, split='train', **kwargs):
    kwargs.setdefault('meta_file', f'{split}/meta.json')
    kwargs.setdefault('sparse_annotations', False)
    return RefYouTubeVOSDataset(
        data_root=root,
        ann_file=f'meta_expressions/{split}/meta_expressions.json',
        data_prefix=dict(img=f'{split}/JPEGImages', ann=f'{split}/Annotations'),
        pipeline=kwargs.pop('pipeline', []),
        **kwargs)


def copy_root(root, tmp_path):
    dst = str(tmp_path / 'copy')
    shutil.copytree(root, dst)
    return dst


def test_toy_dataset_contract(toy_root):
    ds = toy_dataset(toy_root, serialize_data=True)
    meta = read_json(osp.join(toy_root, 'meta_expressions/train/meta_expressions.json'))
    assert len(ds) == sum(len(v['expressions']) for v in meta['videos'].values())
    info = ds.get_data_info(0)
    assert info['exp_type'] in ('static', 'spatial', 'motion')
    assert all(r is not None and not r['sparse'] for r in info['mask_refs'])
    assert ds.metainfo['dataset_name'] == 'ref_youtube_vos'
    lazy = toy_dataset(toy_root, lazy_init=True)
    assert not lazy._fully_initialized and len(lazy) == len(ds)


def test_toy_dense_absent_frames_are_annotated_not_valid(toy_root):
    ds = toy_dataset(toy_root)
    pipeline = make_test_pipeline(scale=(160, 128))
    found = False
    for idx in range(len(ds)):
        sample = pipeline(ds.get_data_info(idx))['data_samples']
        for f in sample.video_data_samples:
            gt = f.gt_instances
            assert gt.annotated.item()
            assert gt.valid.item() == bool(gt.masks.masks.any())
            if not gt.valid.item():
                found = True
                assert not gt.bboxes.any()
    meta = read_json(osp.join(toy_root, 'train/meta.json'))['videos']
    partial = any(len(o['frames']) < 8 for v in meta.values() for o in v['objects'].values())
    assert found == partial


def test_toy_train_pipeline_shapes_and_targets(toy_root):
    ds = toy_dataset(toy_root, pipeline=make_train_pipeline(num_frames=6).transforms)
    for idx in range(len(ds)):
        np.random.seed(idx)
        out = ds[idx]
        inputs, sample = out['inputs'], out['data_samples']
        t, c, h, w = inputs.shape
        assert (t, c) == (6, 3) and inputs.dtype == torch.uint8
        assert min(h, w) in (96, 128, 160) or max(h, w) == 320
        assert any(f.gt_instances.valid.item() for f in sample.video_data_samples)
        for f in sample.video_data_samples:
            gt = f.gt_instances
            assert f.img_shape == (h, w) and gt.masks.masks.shape == (1, h, w)
            assert gt.bboxes.dtype == torch.float32 and gt.labels.tolist() == [0]
            if gt.valid.item():
                x1, y1, x2, y2 = gt.bboxes[0].tolist()
                assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert sample.text == sample.video_data_samples[0].text


def test_flip_swaps_words_and_mirrors_every_frame(toy_root):
    ds = toy_dataset(toy_root)
    idx = next(i for i in range(len(ds)) if ds.get_data_info(i)['exp_type'] == 'spatial')
    info = ds.get_data_info(idx)
    np.random.seed(3)
    # no resize: nearest-neighbour mask resizing is not exactly flip-equivariant
    plain = make_train_pipeline(flip_prob=0.0, crop=False, photometric=False, resize=False)
    np.random.seed(3)
    ref = plain(ds.get_data_info(idx))
    np.random.seed(3)
    flipped = make_train_pipeline(
        flip_prob=1.0, crop=False, photometric=False, resize=False)(
            ds.get_data_info(idx))
    a, b = ref['data_samples'], flipped['data_samples']
    assert a.text == info['text']
    words = {'left': 'right', 'right': 'left', 'top': 'top', 'bottom': 'bottom'}
    side = info['text'].split()[-1]
    assert b.text == info['text'][:-len(side)] + words[side]
    assert [f.frame_index for f in a.video_data_samples] == \
        [f.frame_index for f in b.video_data_samples]
    assert torch.equal(ref['inputs'], flipped['inputs'].flip(-1))
    for fa, fb in zip(a.video_data_samples, b.video_data_samples):
        assert fb.flip and fb.flip_direction == 'horizontal' and not fa.flip
        assert fb.text == b.text
        assert np.array_equal(fa.gt_instances.masks.masks[0],
                              fb.gt_instances.masks.masks[0][:, ::-1])


def test_augmentation_parameters_shared_over_the_clip(toy_root, tmp_path):
    """A clip of T copies of one frame stays T identical frames when the random parameters are
    shared (flip, crop, resize, photometric), and does not when they are not."""
    root = copy_root(toy_root, tmp_path)
    ann = osp.join(root, 'meta_expressions/train/meta_expressions.json')
    meta = read_json(ann)
    vid = sorted(meta['videos'])[0]
    meta['videos'] = {vid: meta['videos'][vid]}
    meta['videos'][vid]['frames'] = ['00003']
    write_json(ann, meta)
    ds = toy_dataset(root)
    shared = make_train_pipeline(num_frames=6, filter_empty=False)
    independent = make_train_pipeline(num_frames=6, share=False, filter_empty=False)
    differs = 0
    for seed in range(5):
        np.random.seed(seed)
        out = shared(ds.get_data_info(0))
        assert all(torch.equal(out['inputs'][0], out['inputs'][t]) for t in range(6))
        np.random.seed(seed)
        try:
            out = independent(ds.get_data_info(0))
        except Exception:  # frames of different sizes cannot be stacked: parameters differ
            differs += 1
            continue
        differs += int(not all(torch.equal(out['inputs'][0], out['inputs'][t]) for t in range(6)))
    assert differs >= 4


def test_valid_minus_test_split(toy_root, tmp_path):
    root = copy_root(toy_root, tmp_path)
    valid = read_json(osp.join(root, 'meta_expressions/valid/meta_expressions.json'))
    test_vid = sorted(valid['videos'])[0]
    # the competition files: no obj_id in valid/test expressions
    for v in valid['videos'].values():
        for e in v['expressions'].values():
            e.pop('obj_id')
    write_json(osp.join(root, 'meta_expressions/valid/meta_expressions.json'), valid)
    write_json(
        osp.join(root, 'meta_expressions/test/meta_expressions.json'),
        dict(videos={test_vid: valid['videos'][test_vid]}))
    shutil.rmtree(osp.join(root, 'valid/Annotations'))
    kwargs = dict(
        meta_file=None,
        test_mode=True,
        exclude_ann_file='meta_expressions/test/meta_expressions.json')
    ds = toy_dataset(root, 'valid', expected_num_videos=2, **kwargs)
    vids = {ds.get_data_info(i)['video_id'] for i in range(len(ds))}
    assert vids == set(valid['videos']) - {test_vid}
    sample = make_test_pipeline()(ds.get_data_info(0))['data_samples']
    assert len(sample) == 8
    assert not any(f.gt_instances.annotated.item() for f in sample.video_data_samples)
    with pytest.raises(ValueError, match='2 videos after exclusion, expected 202'):
        toy_dataset(root, 'valid', expected_num_videos=202, **kwargs)
    with pytest.raises(ValueError, match='no obj_id'):
        toy_dataset(root, 'valid', meta_file=None)


# ---------------------------------------------------------------- bad input
def test_missing_frame(toy_root, tmp_path):
    root = copy_root(toy_root, tmp_path)
    path = osp.join(root, 'train/JPEGImages/train_0002/00004.jpg')
    os.remove(path)
    with pytest.raises(FileNotFoundError, match=r'train_0002/00004\.jpg'):
        toy_dataset(root)
    ds = toy_dataset(root, check_files=False)  # found at load time instead
    idx = next(i for i in range(len(ds)) if ds.get_data_info(i)['video_id'] == 'train_0002')
    with pytest.raises(FileNotFoundError, match=r'(frame|image) not found: .*00004\.jpg'):
        make_test_pipeline()(ds.get_data_info(idx))


@pytest.mark.parametrize('kind', ['garbage', 'truncated'])
def test_corrupt_jpeg(toy_root, tmp_path, kind):
    root = copy_root(toy_root, tmp_path)
    path = osp.join(root, 'train/JPEGImages/train_0001/00002.jpg')
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(b'not a jpeg at all' * 10 if kind == 'garbage' else data[:len(data) // 2])
    ds = toy_dataset(root)
    idx = next(i for i in range(len(ds)) if ds.get_data_info(i)['video_id'] == 'train_0001')
    with pytest.raises(OSError, match=r'train_0001/00002\.jpg'):
        make_test_pipeline()(ds.get_data_info(idx))


def test_mask_size_mismatch_beyond_tolerance(toy_root, tmp_path):
    root = copy_root(toy_root, tmp_path)
    path = osp.join(root, 'train/Annotations/train_0000/00001.png')
    png = Image.open(path)
    png.crop((0, 0, 150, 128)).save(path)
    ds = toy_dataset(root)
    with pytest.raises(ValueError, match=r'train_0000/00001\.png: mask size 150x128'):
        make_test_pipeline()(ds.get_data_info(0))


def test_unknown_obj_id(toy_root, tmp_path):
    root = copy_root(toy_root, tmp_path)
    ann = osp.join(root, 'meta_expressions/train/meta_expressions.json')
    meta = read_json(ann)
    vid = sorted(meta['videos'])[0]
    meta['videos'][vid]['expressions']['0']['obj_id'] = '9'
    write_json(ann, meta)
    with pytest.raises(KeyError, match=r'unknown obj_id 9.*meta\.json'):
        toy_dataset(root)
    meta['videos'][vid]['expressions']['0']['obj_id'] = 'dog'
    write_json(ann, meta)
    with pytest.raises(ValueError, match=r"meta_expressions\.json.*obj_id 'dog'"):
        toy_dataset(root, meta_file=None)


def _set_exp(root, text):
    ann = osp.join(root, 'meta_expressions/train/meta_expressions.json')
    meta = read_json(ann)
    vid = sorted(meta['videos'])[1]
    meta['videos'][vid]['expressions']['0']['exp'] = text
    write_json(ann, meta)
    return vid


def test_empty_expression(toy_root, tmp_path):
    root = copy_root(toy_root, tmp_path)
    full = len(toy_dataset(root))
    vid = _set_exp(root, '   ')
    with pytest.raises(
            ValueError,
            match=rf"meta_expressions\.json: video '{vid}' expression "
            r"'0': empty expression"):
        toy_dataset(root)
    with pytest.warns(DatasetRepairWarning, match='empty expression skipped'):
        ds = toy_dataset(root, on_empty_text='skip')
    assert len(ds) == full - 1


def test_expression_longer_than_text_limit(toy_root, tmp_path):
    root = copy_root(toy_root, tmp_path)
    _set_exp(root, ' '.join(['red'] * 300))
    with pytest.raises(ValueError, match=r'meta_expressions\.json.*302 tokens.*256'):
        toy_dataset(root)
    with pytest.warns(DatasetRepairWarning, match='truncated'):
        ds = toy_dataset(root, on_long_text='truncate')
    texts = [ds.get_data_info(i)['text'] for i in range(len(ds))]
    assert max(len(t.split()) for t in texts) == 254
    # exact count with a real (tiny, offline) BERT tokenizer: "leftmost" is several word pieces
    _set_exp(root, 'the leftmost circle')
    with pytest.raises(ValueError, match='tokens, more than the text model limit'):
        toy_dataset(root, tokenizer=TINY_BERT, text_max_tokens=5)
    assert len(toy_dataset(root, tokenizer=TINY_BERT, text_max_tokens=16)) > 0


def test_meta_file_not_valid_json(toy_root, tmp_path):
    root = copy_root(toy_root, tmp_path)
    with open(osp.join(root, 'train/meta.json'), 'w') as f:
        f.write('{"videos": {')
    with pytest.raises(ValueError, match=r'train/meta\.json is not valid JSON'):
        toy_dataset(root)
    with open(osp.join(root, 'meta_expressions/train/meta_expressions.json'), 'w') as f:
        f.write('[1, 2]')
    with pytest.raises(ValueError, match=r'meta_expressions\.json: expected a JSON object'):
        toy_dataset(root)


def test_exp_types_keeps_only_the_listed_expression_types(toy_root):
    meta = read_json(osp.join(toy_root, 'meta_expressions/train/meta_expressions.json'))
    types = [e['exp_type'] for v in meta['videos'].values() for e in v['expressions'].values()]
    ds = toy_dataset(toy_root, exp_types=['static', 'spatial'])
    kept = [ds.get_data_info(i)['exp_type'] for i in range(len(ds))]
    assert len(kept) == sum(t in ('static', 'spatial') for t in types) > 0
    assert set(kept) <= {'static', 'spatial'}
    assert len(toy_dataset(toy_root, exp_types=['motion'])) == types.count('motion')

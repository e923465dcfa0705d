"""Unit tests of the RVOS transforms: ClipSample, word swap, crop, loading errors, packing."""
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.structures.mask import BitmapMasks
from PIL import Image
from rvos_dataset_helpers import make_test_pipeline  # noqa: F401  (registers, default scope)

from mmrvos.datasets.synthetic import davis_palette
from mmrvos.datasets.transforms import (ClipSample, FilterClipWithoutTarget, LoadRVOSAnnotations,
                                        LoadRVOSFrame, PackRVOSInputs, RVOSPhotoMetricDistortion,
                                        RVOSRandomCrop, decode_mask_ref, swap_left_right)


def video_info(num, **extra):
    info = dict(
        video_id='v',
        exp_id='3',
        text='the cat',
        exp_type='motion',
        annotator=None,
        frame_ids=[f'{i:05d}' for i in range(num)],
        img_paths=[f'/x/{i:05d}.jpg' for i in range(num)],
        mask_refs=[None] * num,
        sample_idx=7)
    info.update(extra)
    return info


def test_clip_sample_train_structure():
    np.random.seed(0)
    cs = ClipSample(num_frames=6, local_range=3, reverse_prob=0.0)
    for _ in range(200):
        out = cs(video_info(30))
        inds = out['frame_index']
        assert len(inds) == 6 and inds == sorted(inds)
        assert all(len(v) == 6 for v in out.values())  # every key is a per-frame list
        assert out['frame_id'] == [f'{i:05d}' for i in inds]
        assert out['img_path'] == [f'/x/{i:05d}.jpg' for i in inds]
        assert out['text'] == ['the cat'] * 6 and out['sample_idx'] == [7] * 6
        assert out['ori_video_length'] == [6] * 6 and out['video_length'] == [30] * 6
        assert 'frame_ids' not in out and 'img_paths' not in out and 'mask_refs' not in out


def test_clip_sample_local_offsets_and_global_spread():
    np.random.seed(1)
    cs = ClipSample(num_frames=3, local_range=3, reverse_prob=0.0)
    for _ in range(200):
        inds = cs(video_info(50, key_frames=[25]))['frame_index']
        assert inds[1] == 25 and 1 <= 25 - inds[0] <= 3 and 1 <= inds[2] - 25 <= 3
    cs = ClipSample(num_frames=6, local_range=3, reverse_prob=0.0)
    spans = [np.ptp(cs(video_info(50, key_frames=[25]))['frame_index']) for _ in range(100)]
    assert max(spans) > 20  # global frames reach far from the key frame


def test_clip_sample_reverse_probability_and_short_videos():
    np.random.seed(2)
    cs = ClipSample(num_frames=6)
    rev = 0
    for _ in range(1000):
        inds = cs(video_info(20))['frame_index']
        rev += int(inds != sorted(inds))
    assert 0.25 < rev / 1000 < 0.35
    short = ClipSample(num_frames=6, reverse_prob=0.0)(video_info(2))['frame_index']
    assert len(short) == 6 and set(short) == {0, 1}
    single = ClipSample(num_frames=6)(video_info(1))['frame_index']
    assert single == [0] * 6


def test_clip_sample_test_mode():
    out = ClipSample(test_mode=True)(video_info(9))
    assert out['frame_index'] == list(range(9)) and out['ori_video_length'] == [9] * 9
    win = ClipSample(test_mode=True, test_window=5)(video_info(9, key_frames=[1]))
    assert win['frame_index'] == [0, 0, 1, 2, 3]
    with pytest.raises(ValueError, match='img_paths has 2 entries for 9 frames'):
        ClipSample(test_mode=True)(video_info(9, img_paths=['a', 'b']))


def test_swap_left_right():
    assert swap_left_right('the man on the left of the bright car') == \
        'the man on the right of the bright car'
    assert swap_left_right('Left hand, right foot; leftmost RIGHT') == \
        'Right hand, left foot; rightmost LEFT'
    assert swap_left_right('copyright leftover') == 'copyright leftover'
    assert swap_left_right('moving left then right') == 'moving right then left'


def _frame_results(h=40, w=60):
    mask = np.zeros((1, h, w), np.uint8)
    mask[0, 30:35, 50:58] = 1
    return dict(
        img=np.zeros((h, w, 3), np.uint8), img_shape=(h, w), gt_masks=BitmapMasks(mask, h, w))


def test_rvos_random_crop_keeps_the_target_even_when_cropped_out():
    crop = RVOSRandomCrop(crop_size=(20, 20))
    np.random.seed(0)
    seen_empty = False
    for _ in range(30):
        out = crop(_frame_results())
        assert out['img'].shape == (20, 20, 3) and out['img_shape'] == (20, 20)
        assert len(out['gt_masks']) == 1 and out['gt_masks'].masks.shape == (1, 20, 20)
        seen_empty |= not out['gt_masks'].masks.any()
    assert seen_empty


def _write_png(path, arr, mode='P'):
    img = Image.fromarray(arr.astype(np.uint8), mode=mode)
    if mode == 'P':  # without a palette PIL may re-index the pixel values on save
        img.putpalette(davis_palette())
    img.save(path)


def test_load_annotations_palette_sparse_and_dense(tmp_path):
    ids = np.zeros((10, 12), np.uint8)
    ids[2:4, 3:6] = 2
    ids[5:7, 1:2] = 3
    _write_png(str(tmp_path / 'a.png'), ids)
    ref = dict(type='palette', path=str(tmp_path / 'a.png'), obj_ids=[2, 3], sparse=True)
    mask, annotated = decode_mask_ref(ref)
    assert annotated and mask.sum() == 6 + 2
    mask, annotated = decode_mask_ref(dict(ref, obj_ids=[4]))
    assert not annotated and not mask.any()
    assert decode_mask_ref(dict(ref, obj_ids=[4], sparse=False))[1]
    assert decode_mask_ref(None) is None
    with pytest.raises(KeyError, match='unknown mask reference type'):
        decode_mask_ref(dict(type='svg'))
    _write_png(str(tmp_path / 'rgb.png'), np.zeros((4, 4, 3)), mode='RGB')
    with pytest.raises(ValueError, match=r'rgb\.png: annotation PNG has mode'):
        decode_mask_ref(dict(ref, path=str(tmp_path / 'rgb.png')))
    with pytest.raises(FileNotFoundError, match=r'missing\.png'):
        decode_mask_ref(dict(ref, path=str(tmp_path / 'missing.png')))
    (tmp_path / 'bad.png').write_bytes(b'\x89PNG garbage')
    with pytest.raises(OSError, match=r'bad\.png'):
        decode_mask_ref(dict(ref, path=str(tmp_path / 'bad.png')))
    out = LoadRVOSAnnotations()(dict(ori_shape=(10, 12), mask_ref=None))
    assert out['gt_masks'].masks.shape == (1, 10, 12) and not out['gt_annotated'][0]


def test_load_frame_png_and_video(tmp_path):
    import cv2
    img = np.random.RandomState(0).randint(0, 255, (16, 24, 3)).astype(np.uint8)
    cv2.imwrite(str(tmp_path / 'f.png'), img)
    out = LoadRVOSFrame()(dict(img_path=str(tmp_path / 'f.png')))
    assert np.array_equal(out['img'], img) and out['ori_shape'] == (16, 24)
    path = str(tmp_path / 'v.avi')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 5, (24, 16))
    for k in range(4):
        writer.write(np.full((16, 24, 3), 40 * k, np.uint8))
    writer.release()
    loader = LoadRVOSFrame()
    frames = [loader(dict(video_path=path, frame_index=k))['img'] for k in range(4)]
    assert [int(round(f.mean() / 40)) for f in frames] == [0, 1, 2, 3]
    with pytest.raises(IndexError, match=r'frame 9 out of range for .*v\.avi'):
        loader(dict(video_path=path, frame_index=9))


def _clip_results(valid_flags, annotated_flags, h=8, w=10):
    results = dict(
        img=[],
        gt_masks=[],
        gt_annotated=[],
        frame_id=[],
        video_id=[],
        exp_id=[],
        text=[],
        img_path=[],
        ori_shape=[],
        img_shape=[],
        frame_index=[],
        ori_video_length=[])
    for t, (v, a) in enumerate(zip(valid_flags, annotated_flags)):
        m = np.zeros((1, h, w), np.uint8)
        if v:
            m[0, 2:5, 3:7] = 1
        results['img'].append(np.full((h, w, 3), 300.7 if t == 0 else t, np.float32))
        results['gt_masks'].append(BitmapMasks(m, h, w))
        results['gt_annotated'].append(np.array([a]))
        results['frame_id'].append(f'{t:05d}')
        results['frame_index'].append(t)
        results['ori_video_length'].append(len(valid_flags))
        for k, val in (('video_id', 'v'), ('exp_id', '0'), ('text', 'a dog'),
                       ('img_path', f'{t}.jpg'), ('ori_shape', (h, w)), ('img_shape', (h, w))):
            results[k].append(val)
    return results


def test_pack_rvos_inputs_contract():
    res = _clip_results([True, False, True], [True, True, False])
    out = PackRVOSInputs()(res)
    inputs, track = out['inputs'], out['data_samples']
    assert inputs.shape == (3, 3, 8, 10) and inputs.dtype == torch.uint8
    assert inputs[0].max() == 255 and inputs[1].max() == 1  # float input rounded and clipped
    assert isinstance(track, TrackDataSample) and len(track) == 3
    assert track.text == 'a dog' and track.frame_ids == ['00000', '00001', '00002']
    assert track.exp_type is None and track.annotator is None
    f0, f1, f2 = track.video_data_samples
    assert isinstance(f0, DetDataSample)
    for f in track.video_data_samples:
        for key in ('img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip', 'flip_direction',
                    'frame_id', 'frame_index', 'video_id', 'exp_id', 'text', 'ori_video_length',
                    'exp_type', 'annotator'):
            assert key in f.metainfo, key
        gt = f.gt_instances
        assert len(gt) == 1 and gt.labels.dtype == torch.long
        assert gt.valid.dtype == torch.bool and gt.annotated.dtype == torch.bool
        assert isinstance(gt.masks, BitmapMasks) and gt.bboxes.shape == (1, 4)
    assert f0.gt_instances.bboxes.tolist() == [[3.0, 2.0, 7.0, 5.0]]
    assert f0.gt_instances.valid.item() and f0.gt_instances.annotated.item()
    assert not f1.gt_instances.valid.item() and f1.gt_instances.annotated.item()
    # mask present but frame not annotated: not valid, zeros
    assert not f2.gt_instances.valid.item() and not f2.gt_instances.annotated.item()
    assert not f2.gt_instances.masks.masks.any() and not f2.gt_instances.bboxes.any()
    assert f0.scale_factor == (1.0, 1.0) and f0.flip is False


def test_filter_clip_without_target():
    assert FilterClipWithoutTarget()(_clip_results([False, True], [True, False])) is None
    assert FilterClipWithoutTarget()(_clip_results([False, True], [True, True])) is not None


def test_pack_rejects_frames_of_different_sizes():
    res = _clip_results([True, True], [True, True])
    res['img'][1] = np.zeros((9, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="video 'v' have different shapes"):
        PackRVOSInputs()(res)


def test_photometric_keeps_colours_and_shares_parameters():
    from mmcv.transforms import TransformBroadcaster
    from mmdet.datasets.transforms import PhotoMetricDistortion
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 2] = 200  # BGR
    keep = RVOSPhotoMetricDistortion(hue_delta=0)
    swap = RVOSPhotoMetricDistortion(hue_delta=0, channel_swap_prob=1.0)
    swapped = 0
    for seed in range(20):
        np.random.seed(seed)
        out = keep(dict(img=red.copy()))['img']
        assert out[..., 2].mean() > out[..., 0].mean() and out[..., 2].mean() > \
            out[..., 1].mean()
        np.random.seed(seed)
        out = swap(dict(img=red.copy()))['img']
        swapped += int(out[..., 2].mean() < max(out[..., 0].mean(), out[..., 1].mean()))
    assert swapped >= 8
    # shared over a clip, and mmdet's own class left intact
    tb = TransformBroadcaster(
        transforms=[dict(type='RVOSPhotoMetricDistortion')], share_random_params=True)
    out = tb(dict(img=[red.copy() for _ in range(4)]))['img']
    assert all(np.array_equal(out[0], o) for o in out)
    assert PhotoMetricDistortion._methods_with_randomness == ['_random_flags']
    assert RVOSPhotoMetricDistortion._methods_with_randomness == ['_random_flags']


def test_rvos_random_choice_shared_over_a_clip():
    from mmcv.transforms import TransformBroadcaster
    tb = TransformBroadcaster(
        transforms=[
            dict(
                type='RVOSRandomChoice',
                transforms=[[dict(type='Resize', scale=(8, 8), keep_ratio=False)],
                            [dict(type='Resize', scale=(6, 6), keep_ratio=False)]])
        ],
        share_random_params=True)
    sizes = set()
    for seed in range(10):
        np.random.seed(seed)
        out = tb(dict(img=[np.zeros((4, 4, 3), np.uint8)] * 3, img_shape=[(4, 4)] * 3))
        shapes = {im.shape for im in out['img']}
        assert len(shapes) == 1
        sizes |= shapes
    assert len(sizes) == 2

"""Bad dataset inputs: each is a clear error naming the file and the problem, or a warned
repair whose result equals an independent reference -- never a silent change of the result.

Data is a one-video Ref-YouTube-VOS layout written in tmp_path (``rvos_bad_data``), MeViS /
RefCOCO files written here, and the real ``davis-judo`` fixture for its 853-px mask.
"""
import json
import os
import os.path as osp
import re
import warnings

import numpy as np
import pytest
from mmengine.dataset import Compose
from PIL import Image
from rvos_bad_data import (FRAMES, H, W, frame_path, make_root, object_ids, png_path, save_frame,
                           save_png, write_meta)

from mmrvos.datasets import (DatasetRepairWarning, MeViSDataset, RefCOCOClipDataset,
                             RefYouTubeVOSDataset)
from mmrvos.datasets.transforms import AnnotationRepairWarning


def dataset(root, **kwargs):
    return RefYouTubeVOSDataset(
        data_root=root,
        ann_file='meta_expressions.json',
        data_prefix=dict(img='JPEGImages', ann='Annotations'),
        pipeline=[],
        **kwargs)


def load_clip(ds, idx=0):
    """The whole video at its original size through the test pipeline."""
    pipeline = Compose([
        dict(type='ClipSample', test_mode=True),
        dict(
            type='TransformBroadcaster',
            share_random_params=True,
            transforms=[dict(type='LoadRVOSFrame'),
                        dict(type='LoadRVOSAnnotations')]),
        dict(type='PackRVOSInputs'),
    ])
    return pipeline(ds.get_data_info(idx))['data_samples']


def gt_masks(sample):
    return np.stack([f.gt_instances.masks.masks[0].astype(bool) for f in sample.video_data_samples])


# --------------------------------------------------------------------------- sanity
def test_clean_data_loads_without_warning(tmp_path):
    root = make_root(str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        sample = load_clip(dataset(root))
    expected = np.stack([object_ids(t) == 1 for t in range(len(FRAMES))])
    assert np.array_equal(gt_masks(sample), expected)


# --------------------------------------------------------------------------- mask modes
@pytest.mark.parametrize('mode,top', [('L', 255), ('1', 1), ('I;16', 65535)])
def test_binary_mask_of_one_object_video_is_a_warned_repair(tmp_path, mode, top):
    """A 0/255 (or 1-bit, or 0/65535) mask where the layout expects ids: today the expression
    silently dropped out (no pixel equals obj_id 1). The video refers to one object only,
    so the foreground is that object, with a warning naming the file."""
    root = make_root(str(tmp_path))
    bad = png_path(root, '00001')
    save_png(bad, (object_ids(1) > 0).astype(np.uint32) * top, mode)
    with pytest.warns(AnnotationRepairWarning, match=re.escape(bad) + '.*read as object 1'):
        ds = dataset(root)
    assert len(ds) == 1
    with pytest.warns(AnnotationRepairWarning, match=re.escape(bad)):
        sample = load_clip(ds)
    expected = np.stack([object_ids(t) == 1 for t in range(len(FRAMES))])
    assert np.array_equal(gt_masks(sample), expected)
    assert all(f.gt_instances.valid.item() for f in sample.video_data_samples)


def test_binary_mask_of_two_object_video_is_an_error(tmp_path):
    root = make_root(str(tmp_path), obj_ids=(1, 2))
    bad = png_path(root, '00000')
    save_png(bad, (object_ids(0, (1, 2)) > 0).astype(np.uint8) * 255, 'L')
    with pytest.raises(ValueError, match=re.escape(bad) + r".*binary 'L'.*objects \[1, 2\]"):
        dataset(root)


@pytest.mark.parametrize('mode', ['RGB', 'RGBA', 'LA'])
def test_colour_mask_is_an_error(tmp_path, mode):
    root = make_root(str(tmp_path))
    bad = png_path(root, '00002')
    ids = object_ids(2)
    save_png(bad, np.stack([ids * 128] * 3, -1) if mode != 'LA' else ids, mode)
    with pytest.raises(ValueError, match=re.escape(bad) + f".*mode '{mode}'"):
        dataset(root)


def test_16bit_mask_with_ids_above_255_is_an_error(tmp_path):
    root = make_root(str(tmp_path))
    bad = png_path(root, '00000')
    ids = object_ids(0).astype(np.uint16)
    ids[0, 0] = 300
    save_png(bad, ids, 'I;16')
    with pytest.raises(ValueError, match=re.escape(bad) + '.*values up to 300'):
        dataset(root)


def test_16bit_mask_with_ids_reads_the_ids(tmp_path):
    root = make_root(str(tmp_path))
    save_png(png_path(root, '00001'), object_ids(1), 'I;16')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        sample = load_clip(dataset(root))
    assert np.array_equal(gt_masks(sample)[1], object_ids(1) == 1)


def test_truncated_png_is_an_error(tmp_path):
    root = make_root(str(tmp_path))
    bad = png_path(root, '00001')
    data = open(bad, 'rb').read()
    with open(bad, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(OSError, match=re.escape(bad) + '.*truncated'):
        dataset(root)


# --------------------------------------------------------------------------- sizes
def test_mask_of_wrong_size_names_mask_frame_and_sizes(tmp_path):
    root = make_root(str(tmp_path))
    bad = png_path(root, '00001')
    save_png(bad, np.zeros((H, W - 5), np.uint8) + (object_ids(1)[:, :W - 5]))
    ds = dataset(root)
    with pytest.raises(
            ValueError,
            match=re.escape(bad) + f'.*{W - 5}x{H}.*' + re.escape(frame_path(root, '00001')) +
            f' {W}x{H}'):
        load_clip(ds)


def test_one_pixel_narrower_mask_is_a_warned_repair(tmp_path):
    root = make_root(str(tmp_path))
    bad = png_path(root, '00001')
    ids = object_ids(1)
    ids[:, W - 1] = 1  # the last column is cut off by the repair
    save_png(bad, ids[:, :W - 1])
    with pytest.warns(AnnotationRepairWarning, match=re.escape(bad) + f'.*{W - 1}x{H}.*{W}x{H}'):
        sample = load_clip(dataset(root))
    expected = ids == 1
    expected[:, W - 1] = False  # padded with background
    assert np.array_equal(gt_masks(sample)[1], expected)


def test_judo_853px_mask_stays_a_warned_repair(judo_root):
    ds = RefYouTubeVOSDataset(
        data_root=judo_root,
        ann_file='meta_expressions.json',
        data_prefix=dict(img='JPEGImages', ann='Annotations'),
        pipeline=[])
    png = osp.join(judo_root, 'Annotations', 'judo', '00005.png')
    with pytest.warns(AnnotationRepairWarning, match=re.escape(png) + '.*853x480.*854x480'):
        sample = load_clip(ds, 1)  # expression 1 = object 2, annotated on 00005 only
    ref = np.zeros((480, 854), bool)
    ref[:, :853] = np.asarray(Image.open(png)) == 2
    assert np.array_equal(gt_masks(sample)[5], ref)


def test_unannotated_frame_of_another_size_is_an_error(tmp_path):
    root = make_root(str(tmp_path), masks={'00000': object_ids(0), '00002': object_ids(2)})
    odd = frame_path(root, '00001')
    save_frame(odd, size=(W + 8, H))
    ds = dataset(root)
    with pytest.raises(ValueError, match=re.escape(odd) + f'.*{W + 8}x{H}.*{W}x{H}'):
        load_clip(ds)


# --------------------------------------------------------------------------- dropped targets
def test_obj_id_in_no_mask_is_an_error_listing_it(tmp_path):
    """obj_id 2 is in no PNG: today it silently drops out of training and of J&F."""
    exps = {
        '0': dict(exp='the first box', obj_id='1'),
        '7': dict(exp='a box that is not there', obj_id='2')
    }
    root = make_root(str(tmp_path), exps=exps)
    meta = osp.join(root, 'meta_expressions.json')
    with pytest.raises(
            ValueError,
            match='(?s)' + re.escape(meta) + r".*1 expression.*video 'v' "
            r"expression '7': obj_id \[2\] is in no annotated frame"):
        dataset(root)
    with pytest.raises(ValueError, match='would silently drop out of scoring'):
        dataset(root, test_mode=True)
    with pytest.warns(
            DatasetRepairWarning, match=r"(?s)1 expression.*'7'.*strict=False: 1 "
            'expression'):
        ds = dataset(root, strict=False)
    assert [ds.get_data_info(i)['exp_id'] for i in range(len(ds))] == ['0']


def test_obj_id_in_no_frame_per_meta_json(tmp_path):
    """With meta.json, its per-object "frames" decide (no PNG is read at load time)."""
    root = make_root(str(tmp_path), obj_ids=(1, 2))
    with open(osp.join(root, 'meta.json'), 'w') as f:
        json.dump(
            {
                'videos': {
                    'v': {
                        'objects': {
                            '1': {
                                'category': 'box',
                                'frames': ['00001']
                            },
                            '2': {
                                'category': 'box',
                                'frames': []
                            }
                        }
                    }
                }
            }, f)
    with pytest.raises(ValueError, match=r"expression '1': obj_id \[2\].*meta\.json"):
        dataset(root, meta_file='meta.json')


def test_mevis_all_null_target_is_an_error_in_training_only(tmp_path):
    root = str(tmp_path)
    frames = ['00000', '00001']
    for f in frames:
        save_frame(osp.join(root, 'JPEGImages', 'v', f + '.jpg'))
    write_meta(
        root,
        {'v': dict(frames=frames, expressions={'0': dict(exp='gone', obj_id=[0], anno_id=[5])})})
    with open(osp.join(root, 'mask_dict.json'), 'w') as f:
        json.dump({'5': [None, None]}, f)
    kw = dict(
        data_root=root, ann_file='meta_expressions.json', mask_file='mask_dict.json', pipeline=[])
    with pytest.raises(
            ValueError,
            match=r"(?s)meta_expressions\.json.*expression '0'.*"
            r'every mask of anno_id .* is null'):
        MeViSDataset(**kw)
    assert len(MeViSDataset(test_mode=True, **kw)) == 1  # protocol: an empty target


def test_no_annotation_png_at_all_is_an_error(tmp_path):
    root = make_root(str(tmp_path), masks={})
    with pytest.raises(
            ValueError,
            match=r"expression '0': no annotation PNG for any of its "
            r'3 frames in .*Annotations/v'):
        dataset(root)


# --------------------------------------------------------------------------- JSON meta files
def test_bad_json_names_file_line_and_column(tmp_path):
    root = make_root(str(tmp_path))
    meta = osp.join(root, 'meta_expressions.json')
    with open(meta, 'w') as f:
        f.write('{"videos": {"v": {"frames": ["00000",]}}}')
    with pytest.raises(ValueError, match=re.escape(meta) + ' is not valid JSON.*line 1 column'):
        dataset(root)


def test_duplicated_expression_id_is_an_error(tmp_path):
    root = make_root(str(tmp_path))
    meta = osp.join(root, 'meta_expressions.json')
    with open(meta, 'w') as f:
        f.write('{"videos": {"v": {"frames": ["00000", "00001", "00002"], "expressions": {'
                '"0": {"exp": "a", "obj_id": "1"}, "0": {"exp": "b", "obj_id": "1"}}}}}')
    with pytest.raises(ValueError, match=re.escape(meta) + r".*key '0' appears twice"):
        dataset(root)


@pytest.mark.parametrize('videos,problem', [
    ([], r'"videos" must be an object'),
    ({
        'v': {
            'frames': list(FRAMES)
        }
    }, r"video 'v' lacks \"expressions\""),
    ({
        'v': {
            'frames': list(FRAMES),
            'expressions': ['a']
        }
    }, r'"expressions" must be an object'),
    ({
        'v': {
            'frames': '00000',
            'expressions': {}
        }
    }, r'"frames" must be a list'),
])
def test_partial_meta_is_an_error(tmp_path, videos, problem):
    root = make_root(str(tmp_path))
    meta = write_meta(root, videos)
    with pytest.raises(ValueError, match=re.escape(meta) + '.*' + problem):
        dataset(root)


@pytest.mark.parametrize('text', ['', '   \t '])
def test_empty_expression_is_an_error(tmp_path, text):
    root = make_root(str(tmp_path), exps={'3': dict(exp=text, obj_id='1')})
    with pytest.raises(
            ValueError, match=r"meta_expressions\.json: video 'v' expression '3': "
            'empty expression'):
        dataset(root)


# --------------------------------------------------------------------------- frames
def test_missing_frame_folder_is_an_error(tmp_path):
    root = make_root(str(tmp_path))
    folder = osp.join(root, 'JPEGImages', 'v')
    for f in os.listdir(folder):
        os.remove(osp.join(folder, f))
    os.rmdir(folder)
    with pytest.raises(FileNotFoundError, match='frame directory not found: ' + re.escape(folder)):
        dataset(root)


def test_listed_frame_that_does_not_exist_is_an_error(tmp_path):
    root = make_root(str(tmp_path))
    os.remove(frame_path(root, '00002'))
    with pytest.raises(FileNotFoundError, match=re.escape(frame_path(root, '00002'))):
        dataset(root)


@pytest.mark.parametrize('frames,problem', [
    (['8', '9', '10'], r"different lengths \('8', '10'\).*zero-pad"),
    (['00000', '00001', '00001'], r"frame '00001' is listed twice"),
    (['00000', 5], r'frame names must be non-empty strings'),
])
def test_odd_frame_numbering_is_an_error(tmp_path, frames, problem):
    root = make_root(str(tmp_path), frames=[str(f) for f in dict.fromkeys(frames)], masks={})
    meta = write_meta(root,
                      {'v': dict(frames=frames, expressions={'0': dict(exp='a box', obj_id='1')})})
    with pytest.raises(ValueError, match=re.escape(meta) + f".*video 'v'.*{problem}"):
        dataset(root)


def test_refcoco_duplicated_image_id_is_an_error(tmp_path):
    root = str(tmp_path)
    save_frame(osp.join(root, 'img', 'a.jpg'))
    img = dict(id=3, file_name='a.jpg', height=H, width=W, caption='the box')
    ann = dict(image_id=3, segmentation=[[1, 1, 5, 1, 5, 5]])
    path = osp.join(root, 'refs.json')
    with open(path, 'w') as f:
        json.dump(dict(images=[img, dict(img, caption='the same box')], annotations=[ann]), f)
    with pytest.raises(ValueError, match=re.escape(path) + '.*image id 3 is listed twice'):
        RefCOCOClipDataset(
            data_root=root, ann_file='refs.json', data_prefix=dict(img='img'), pipeline=[])

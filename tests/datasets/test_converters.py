"""tools/dataset_converters: DAVIS text annotations -> YTVOS layout, refexp -> COCO."""
import importlib.util
import json
import os
import os.path as osp
import pickle

import cv2
import numpy as np
import pytest
from PIL import Image
from rvos_dataset_helpers import make_test_pipeline

from mmrvos.datasets import RefCOCOClipDataset, RefDAVISDataset
from mmrvos.datasets.synthetic import davis_palette
from rvos_test_utils import REPO_ROOT


def _tool(name):
    path = osp.join(REPO_ROOT, 'tools', 'dataset_converters', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'converter_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _davis(root):
    davis = osp.join(root, 'DAVIS')
    for vid, split, n_obj in (('bear', 'train', 1), ('classic-car', 'val', 2)):
        os.makedirs(osp.join(davis, 'JPEGImages/480p', vid))
        os.makedirs(osp.join(davis, 'Annotations_unsupervised/480p', vid))
        for t in range(3):
            cv2.imwrite(
                osp.join(davis, 'JPEGImages/480p', vid, f'{t:05d}.jpg'),
                np.full((24, 32, 3), 50 * t, np.uint8))
            ids = np.zeros((24, 32), np.uint8)
            for o in range(1, n_obj + 1):
                ids[4 * o:4 * o + 3, 2:10] = o
            png = Image.fromarray(ids, mode='P')
            png.putpalette(davis_palette())
            png.save(osp.join(davis, 'Annotations_unsupervised/480p', vid, f'{t:05d}.png'))
        os.makedirs(osp.join(davis, 'ImageSets/2017'), exist_ok=True)
        with open(osp.join(davis, 'ImageSets/2017', f'{split}.txt'), 'a') as f:
            f.write(vid + '\n')
    with open(osp.join(davis, 'davis_semantics.json'), 'w') as f:
        json.dump({'bear': {'1': 'bear'}, 'classic-car': {'1': 'car', '2': 'person'}}, f)
    text = osp.join(root, 'davis_text_annotations')
    os.makedirs(text)
    lines = {
        'Davis17_annot1.txt': ('bear 1 "a brown bear"\nclasic-car 1 "a car on the left"\n'
                               'clasic-car 2 "a man"\n', 'utf-8'),
        'Davis17_annot1_full_video.txt': ('bear 1 "bear walking"\nclasic-car 2 "man '
                                          'walking"\nclasic-car 1 "car driving"\n', 'utf-8'),
        'Davis17_annot2.txt': ('bear 1 "big bear"\nclasic-car 1 "old car"\n'
                               'clasic-car 2 "caf\xe9 owner"\n', 'latin-1'),
        'Davis17_annot2_full_video.txt': ('bear 1 "bear"\nclasic-car 1 "car"\n'
                                          'clasic-car 2 "person"\n', 'latin-1'),
    }
    for name, (content, enc) in lines.items():
        with open(osp.join(text, name), 'w', encoding=enc) as f:
            f.write(content)


def test_davis_to_ytvos(tmp_path):
    root, out = str(tmp_path / 'src'), str(tmp_path / 'out')
    _davis(root)
    stats = _tool('davis_to_ytvos').convert(root, out, mode='symlink')
    assert stats == dict(train_videos=1, train_expressions=4, valid_videos=1, valid_expressions=8)
    meta = json.load(open(osp.join(out, 'meta_expressions/valid/meta_expressions.json')))
    exps = meta['videos']['classic-car']['expressions']  # misspelled name fixed
    assert [exps[str(i)]['annotator'] for i in range(8)] == [0, 1, 2, 3] * 2
    assert [exps[str(i)]['obj_id'] for i in range(8)] == ['1'] * 4 + ['2'] * 4
    assert exps['6']['exp'] == 'caf\xe9 owner' and exps['5']['exp'] == 'man walking'
    assert exps['0']['exp_type'] == 'first_frame' and exps['1']['exp_type'] == 'full_video'
    cats = json.load(open(osp.join(out, 'valid/meta.json')))['videos']['classic-car']
    assert cats['objects']['2']['category'] == 'person'
    ds = RefDAVISDataset(
        data_root=out,
        ann_file='meta_expressions/valid/meta_expressions.json',
        meta_file='valid/meta.json',
        data_prefix=dict(img='valid/JPEGImages', ann='valid/Annotations'),
        test_mode=True,
        annotators=[3],
        pipeline=[])
    assert len(ds) == 2 and {ds.get_data_info(i)['annotator'] for i in range(2)} == {3}
    sample = make_test_pipeline(scale=(32, 24))(ds.get_data_info(1))['data_samples']
    assert sample.annotator == 3 and all(f.gt_instances.valid.item()
                                         for f in sample.video_data_samples)


def test_davis_to_ytvos_bad_line(tmp_path):
    root = str(tmp_path)
    _davis(root)
    with open(osp.join(root, 'davis_text_annotations/Davis17_annot1.txt'), 'a') as f:
        f.write('bear x "oops"\n')
    with pytest.raises(ValueError, match=r'Davis17_annot1\.txt:4: obj_id'):
        _tool('davis_to_ytvos').convert(root, str(tmp_path / 'o'))


def test_refexp_to_coco(tmp_path):
    root = str(tmp_path)
    os.makedirs(osp.join(root, 'train2014'))
    os.makedirs(osp.join(root, 'refcoco'))
    cv2.imwrite(
        osp.join(root, 'train2014', 'COCO_train2014_000000000009.jpg'),
        np.zeros((20, 30, 3), np.uint8))
    poly = [[2.0, 2.0, 12.0, 2.0, 12.0, 10.0, 2.0, 10.0]]
    instances = dict(
        images=[dict(id=9, file_name='COCO_train2014_000000000009.jpg', height=20, width=30)],
        annotations=[
            dict(
                id=5,
                image_id=9,
                segmentation=poly,
                area=80,
                iscrowd=0,
                bbox=[2, 2, 10, 8],
                category_id=1)
        ],
        categories=[dict(id=1, name='cat')])
    with open(osp.join(root, 'refcoco', 'instances.json'), 'w') as f:
        json.dump(instances, f)
    refs = [
        dict(
            ref_id=0,
            ann_id=5,
            image_id=9,
            split='train',
            category_id=1,
            file_name='COCO_train2014_000000000009_5.jpg',
            sentences=[dict(sent='cat left', sent_id=0),
                       dict(sent='the cat', sent_id=1)]),
        dict(
            ref_id=1,
            ann_id=5,
            image_id=9,
            split='val',
            category_id=1,
            sentences=[dict(sent='a cat', sent_id=2)])
    ]
    with open(osp.join(root, 'refcoco', 'refs(unc).p'), 'wb') as f:
        pickle.dump(refs, f)
    stats = _tool('refexp_to_coco').convert(root, 'refcoco', 'unc', root)
    assert stats == {'train': 2, 'val': 1}
    ds = RefCOCOClipDataset(
        data_root=root, ann_file='refcoco/instances_refcoco_train.json', pipeline=[])
    assert [ds.get_data_info(i)['text'] for i in range(2)] == ['cat left', 'the cat']
    gt = make_test_pipeline(scale=(30, 20))(ds.get_data_info(1))['data_samples'] \
        .video_data_samples[0].gt_instances
    assert gt.valid.item() and gt.bboxes[0, :2].tolist() == [2.0, 2.0]
    with open(osp.join(root, 'refcoco', 'instances.json'), 'w') as f:
        f.write('{')
    with pytest.raises(ValueError, match=r'instances\.json is not valid JSON'):
        _tool('refexp_to_coco').convert(root, 'refcoco', 'unc', root)

"""Convert RefCOCO / RefCOCO+ / RefCOCOg (lichengunc/refer files) to COCO-style JSON with one
image entry per sentence (the MDETR / ReferFormer format read by ``RefCOCOClipDataset``).

Input (``--data-root``)::

    <dataset>/refs(<split_by>).p      pickled list of refs: ref_id, ann_id, image_id, split,
                                      sentences [{sent, sent_id, tokens, raw}], ...
    <dataset>/instances.json          COCO 2014 images / annotations / categories

Output: ``<out>/<dataset>/instances_<dataset>_<split>.json`` for every split in the refs, with
``images`` = ``{id, file_name, height, width, original_id, caption, dataset_name}`` (one per
sentence) and ``annotations`` = the referred object of each entry (``image_id`` = that entry).

The refs files are pickles (written by Python 2). They are read with :class:`RefsUnpickler`,
which allows no global at all: plain lists, dicts, strings and numbers need none, and a
pickle that names any function or class (the only way a pickle can run code) is refused with
an error naming the file and the global.

Example::

    python tools/dataset_converters/refexp_to_coco.py --data-root data/coco \
        --dataset refcocog --split-by umd
"""
import argparse
import json
import os
import os.path as osp
import pickle
from collections import defaultdict
from typing import Dict

DEFAULT_SPLIT_BY = {'refcoco': 'unc', 'refcoco+': 'unc', 'refcocog': 'umd'}


class RefusedPickleError(pickle.UnpicklingError):
    """A refs pickle names a global (function / class) instead of holding plain data."""


class RefsUnpickler(pickle.Unpickler):
    """Unpickler for plain data only: lists, dicts, tuples, strings, numbers, bools, None.

    Those are built by pickle opcodes without any global, so :meth:`find_class` (which every
    ``GLOBAL`` / ``STACK_GLOBAL`` / ``INST`` / extension-code opcode goes through, and without
    which nothing can be called) refuses every name.
    """

    def __init__(self, file, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        raise RefusedPickleError(
            f'refusing to unpickle {self.source}: it references the global {module}.{name} '
            '(a refs file holds only lists, dicts, strings and numbers; a pickle naming a '
            'function or class can run code)')


def _load_refs(path: str) -> list:
    if not osp.isfile(path):
        raise FileNotFoundError(f'refs file not found: {path}')
    try:
        with open(path, 'rb') as f:
            refs = RefsUnpickler(f, path).load()
    except RefusedPickleError:
        raise
    except Exception as e:
        raise ValueError(f'{path} is not a readable refs pickle: {e}') from e
    if not isinstance(refs, list):
        raise ValueError(f'{path}: expected a list of refs')
    return refs


def convert(data_root: str, dataset: str, split_by: str, out: str) -> Dict[str, int]:
    """Write one JSON per split; returns the number of sentences per split."""
    src = osp.join(data_root, dataset)
    refs = _load_refs(osp.join(src, f'refs({split_by}).p'))
    inst_path = osp.join(src, 'instances.json')
    if not osp.isfile(inst_path):
        raise FileNotFoundError(f'instances file not found: {inst_path}')
    try:
        with open(inst_path) as f:
            instances = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'{inst_path} is not valid JSON: {e}') from e
    images = {img['id']: img for img in instances['images']}
    anns = {ann['id']: ann for ann in instances['annotations']}
    by_split = defaultdict(list)
    for ref in refs:
        by_split[ref['split']].append(ref)
    os.makedirs(osp.join(out, dataset), exist_ok=True)
    stats = {}
    for split in sorted(by_split):
        coco = dict(
            info=instances.get('info', {}),
            licenses=instances.get('licenses', []),
            categories=instances.get('categories', []),
            images=[],
            annotations=[])
        for ref in by_split[split]:
            if ref['image_id'] not in images or ref['ann_id'] not in anns:
                raise KeyError(f'ref {ref.get("ref_id")}: image {ref["image_id"]} or annotation '
                               f'{ref["ann_id"]} missing from {inst_path}')
            img, ann = images[ref['image_id']], anns[ref['ann_id']]
            for sent in ref['sentences']:
                entry_id = len(coco['images']) + 1
                coco['images'].append(
                    dict(
                        id=entry_id,
                        file_name=img['file_name'],
                        height=img['height'],
                        width=img['width'],
                        original_id=img['id'],
                        caption=sent['sent'],
                        dataset_name=dataset))
                coco['annotations'].append(
                    dict(
                        id=entry_id,
                        image_id=entry_id,
                        original_id=ann['id'],
                        segmentation=ann['segmentation'],
                        area=ann['area'],
                        iscrowd=ann.get('iscrowd', 0),
                        bbox=ann['bbox'],
                        category_id=ann['category_id']))
        with open(osp.join(out, dataset, f'instances_{dataset}_{split}.json'), 'w') as f:
            json.dump(coco, f)
        stats[split] = len(coco['images'])
    return stats


def main():
    parser = argparse.ArgumentParser(description='refer (refs(*).p) -> COCO-style JSON')
    parser.add_argument('--data-root', default='data/coco')
    parser.add_argument('--dataset', choices=list(DEFAULT_SPLIT_BY), default='refcoco')
    parser.add_argument('--split-by', default=None, help='unc / google / umd')
    parser.add_argument('--out', default=None, help='defaults to --data-root')
    args = parser.parse_args()
    split_by = args.split_by or DEFAULT_SPLIT_BY[args.dataset]
    try:
        stats = convert(args.data_root, args.dataset, split_by, args.out or args.data_root)
    except (OSError, ValueError, KeyError, pickle.UnpicklingError) as err:
        raise SystemExit(f'error: {err}') from None
    print(json.dumps(stats, indent=1))


if __name__ == '__main__':
    main()

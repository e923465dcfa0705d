"""Convert DAVIS 2017 + its referring expressions (Khoreva et al.) to the Ref-YouTube-VOS layout.

Input (``--davis-root``, as unzipped from the DAVIS and MPI sites)::

    DAVIS/JPEGImages/480p/<vid>/*.jpg
    DAVIS/Annotations_unsupervised/480p/<vid>/*.png
    DAVIS/ImageSets/2017/{train,val}.txt
    DAVIS/davis_semantics.json                     (optional: object categories)
    davis_text_annotations/Davis17_annot1.txt               annotator 1, first frame
    davis_text_annotations/Davis17_annot1_full_video.txt    annotator 1, full video
    davis_text_annotations/Davis17_annot2.txt               annotator 2, first frame
    davis_text_annotations/Davis17_annot2_full_video.txt    annotator 2, full video

Each text line is ``<video> <obj_id> "<expression>"``.

Output (``--out``)::

    {train,valid}/JPEGImages/<vid>/, {train,valid}/Annotations/<vid>/, {train,valid}/meta.json
    meta_expressions/{train,valid}/meta_expressions.json

Expressions are numbered object-major, annotator-minor (``4 * k + a`` when all four exist, the
ReferFormer order) and carry ``"annotator"`` (0..3 in the order above) and ``"exp_type"``
(``"first_frame"`` / ``"full_video"``), read by :class:`mmrvos.datasets.RefDAVISDataset`.

Example::

    python tools/dataset_converters/davis_to_ytvos.py --davis-root data/ref-davis \
        --out data/ref-davis --mode symlink

Frames and masks already in ``--out`` are kept; meta files that differ from this conversion
are refused without ``--overwrite``. Errors print ``error: ...`` and exit with status 2.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys
from collections import defaultdict
from typing import Dict, List, Tuple

# (file name, encoding, annotator index, exp_type)
TEXT_FILES = (
    ('Davis17_annot1.txt', 'utf-8', 0, 'first_frame'),
    ('Davis17_annot1_full_video.txt', 'utf-8', 1, 'full_video'),
    ('Davis17_annot2.txt', 'latin-1', 2, 'first_frame'),
    ('Davis17_annot2_full_video.txt', 'latin-1', 3, 'full_video'),
)
# video names misspelled in the text annotation files
VIDEO_NAME_FIXES = {
    'clasic-car': 'classic-car',
    'dog-scale': 'dogs-scale',
    'motor-bike': 'motorbike'
}
SPLITS = (('train', 'train'), ('val', 'valid'))


def parse_text_file(path: str, encoding: str) -> Dict[str, Dict[int, str]]:
    """``{video: {obj_id: expression}}`` from one annotator file; errors name file and line."""
    out: Dict[str, Dict[int, str]] = defaultdict(dict)
    with open(path, 'r', encoding=encoding) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(maxsplit=2)
            if len(parts) < 3:
                raise ValueError(f'{path}:{lineno}: expected <video> <obj_id> "<expression>"')
            video, obj, exp = parts
            try:
                obj_id = int(obj)
            except ValueError:
                raise ValueError(f'{path}:{lineno}: obj_id {obj!r} is not an integer') from None
            exp = exp.strip()
            if len(exp) >= 2 and exp[0] == exp[-1] == '"':
                exp = exp[1:-1]
            if not exp.strip():
                raise ValueError(f'{path}:{lineno}: empty expression')
            out[VIDEO_NAME_FIXES.get(video, video)][obj_id] = exp
    return out


def build_expressions(texts: List[Tuple[Dict[int, str], int, str]]) -> Dict[str, dict]:
    """Expressions of one video from the per-annotator ``{obj_id: exp}`` dicts."""
    obj_ids = sorted({o for per_obj, _, _ in texts for o in per_obj})
    expressions = {}
    for obj_id in obj_ids:
        for per_obj, annotator, exp_type in texts:
            if obj_id in per_obj:
                expressions[str(len(expressions))] = dict(
                    exp=per_obj[obj_id], obj_id=str(obj_id), annotator=annotator, exp_type=exp_type)
    return expressions


def _transfer(src: str, dst: str, mode: str) -> None:
    if osp.lexists(dst) or src == dst:
        return
    os.makedirs(osp.dirname(dst), exist_ok=True)
    if mode == 'copy':
        shutil.copytree(src, dst)
    elif mode == 'symlink':
        os.symlink(osp.abspath(src), dst)
    else:
        shutil.move(src, dst)


def _json_text(obj) -> str:
    return json.dumps(obj)


def check_outputs(files: Dict[str, str], overwrite: bool) -> None:
    """Refuse to replace an existing meta file that differs from the new one (a different
    dataset in ``--out``) unless ``overwrite``; an identical file (a re-run) is fine."""
    for path, text in files.items():
        if osp.isfile(path) and not overwrite:
            with open(path) as f:
                if f.read() != text:
                    raise FileExistsError(
                        f'{path} exists and differs from the conversion of this DAVIS root; '
                        'pass --overwrite to replace it, or choose another --out')
        elif osp.exists(path) and not osp.isfile(path):
            raise FileExistsError(f'{path} exists and is not a file')


def _write_text(path: str, text: str) -> None:
    """Write through a temporary file, so a crash never leaves half a meta file."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = f'{path}.partial'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def convert(davis_root: str,
            out: str,
            mode: str = 'copy',
            overwrite: bool = False) -> Dict[str, int]:
    """Run the conversion; returns the number of videos and expressions per split.

    Everything is checked before anything is moved or written: the inputs, and that the meta
    files in ``out`` are absent, identical, or ``overwrite`` is given. Frames and masks already
    in ``out`` (an earlier run) are kept as they are.
    """
    davis = osp.join(davis_root, 'DAVIS')
    texts = []
    for name, encoding, annotator, exp_type in TEXT_FILES:
        path = osp.join(davis_root, 'davis_text_annotations', name)
        if not osp.isfile(path):
            raise FileNotFoundError(f'text annotation file not found: {path}')
        texts.append((parse_text_file(path, encoding), annotator, exp_type))
    semantics = {}
    sem_path = osp.join(davis, 'davis_semantics.json')
    if osp.isfile(sem_path):
        with open(sem_path) as f:
            semantics = json.load(f)
    stats, files, transfers = {}, {}, []
    for davis_split, split in SPLITS:
        list_path = osp.join(davis, 'ImageSets', '2017', f'{davis_split}.txt')
        if not osp.isfile(list_path):
            raise FileNotFoundError(f'split file not found: {list_path}')
        with open(list_path) as f:
            videos = [v.strip() for v in f if v.strip()]
        meta_exp, meta = {}, {}
        for vid in videos:
            img_src = osp.join(davis, 'JPEGImages', '480p', vid)
            ann_src = osp.join(davis, 'Annotations_unsupervised', '480p', vid)
            img_dst = osp.join(out, split, 'JPEGImages', vid)
            ann_dst = osp.join(out, split, 'Annotations', vid)
            for src, dst in ((img_src, img_dst), (ann_src, ann_dst)):
                if not osp.isdir(src) and not osp.isdir(dst):  # dst: an earlier run moved it
                    raise FileNotFoundError(f'DAVIS directory not found: {src}')
                transfers.append((src, dst))
            img_dir = img_dst if osp.isdir(img_dst) else img_src
            frames = sorted(osp.splitext(n)[0] for n in os.listdir(img_dir) if n.endswith('.jpg'))
            per_video = [(t.get(vid, {}), a, e) for t, a, e in texts]
            expressions = build_expressions(per_video)
            if not expressions:
                raise ValueError(f'video {vid!r} has no referring expression in '
                                 f'{osp.join(davis_root, "davis_text_annotations")}')
            meta_exp[vid] = dict(expressions=expressions, frames=frames)
            objects = sorted({int(e['obj_id']) for e in expressions.values()})
            meta[vid] = dict(objects={
                str(o): dict(category=semantics.get(vid, {}).get(str(o)))
                for o in objects
            })
        files[osp.join(out, 'meta_expressions', split,
                       'meta_expressions.json')] = _json_text(dict(videos=meta_exp))
        files[osp.join(out, split, 'meta.json')] = _json_text(dict(videos=meta))
        stats[f'{split}_videos'] = len(meta_exp)
        stats[f'{split}_expressions'] = sum(len(v['expressions']) for v in meta_exp.values())
    check_outputs(files, overwrite)
    for src, dst in transfers:
        _transfer(src, dst, mode)
    for path, text in files.items():
        _write_text(path, text)
    return stats


def main(argv=None):
    parser = argparse.ArgumentParser(description='DAVIS 2017 + text -> Ref-YouTube-VOS layout')
    parser.add_argument('--davis-root', default='data/ref-davis')
    parser.add_argument('--out', default='data/ref-davis')
    parser.add_argument(
        '--mode',
        choices=['copy', 'symlink', 'move'],
        default='copy',
        help='how frames and masks reach the output')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace meta files in --out that differ from this conversion')
    args = parser.parse_args(argv)
    stats = convert(args.davis_root, args.out, args.mode, args.overwrite)
    print(json.dumps(stats, indent=1))
    return stats


def _run_cli():
    """``error: ...`` and exit status 2 for bad input (mmrvos/apis/cli.py, loaded by path:
    this converter needs only the standard library)."""
    import importlib.util
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    spec = importlib.util.spec_from_file_location('mmrvos_cli',
                                                  osp.join(root, 'mmrvos', 'apis', 'cli.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli.run_cli(main)


if __name__ == '__main__':
    sys.exit(_run_cli())

"""Run the repository's entry points as a user does: ``python tools/x.py ...`` in a fresh
process from the repository root (no conftest, no registry scope set up beforehand)."""
import os
import os.path as osp
import subprocess
import sys
from typing import Optional, Sequence

from rvos_test_utils import JUDO, REPO_ROOT

TOY_CONFIG = osp.join('configs', 'referdino', 'referdino_tiny_1xb2_toy-rvos.py')
JUDO_FRAMES = osp.join(JUDO, 'JPEGImages', 'judo')


def run_tool(
    args: Sequence[str],
    timeout: float = 600,
    env: Optional[dict] = None,
    python_args: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """``[sys.executable, *args]`` from the repo root, offline; output captured as text.
    ``MMRVOS_DEBUG`` is removed unless ``env`` sets it."""
    full = {k: v for k, v in os.environ.items() if k != 'MMRVOS_DEBUG'}
    full.update(HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', OMP_NUM_THREADS='2')
    full.update(env or {})
    return subprocess.run([sys.executable, *python_args, *map(str, args)],
                          cwd=REPO_ROOT,
                          env=full,
                          capture_output=True,
                          text=True,
                          timeout=timeout)


def describe(proc: subprocess.CompletedProcess) -> str:
    return (f'exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n'
            f'--- stderr\n{proc.stderr[-3000:]}')


def assert_ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, describe(proc)


def assert_clean_error(proc: subprocess.CompletedProcess, *fragments: str, code: int = 2) -> None:
    """Exit status ``code``, an ``error: ...`` line on stderr holding every fragment, and no
    traceback."""
    assert proc.returncode == code, describe(proc)
    assert 'Traceback' not in proc.stderr, describe(proc)
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error: ')]
    assert errors, describe(proc)
    for fragment in fragments:
        assert fragment in proc.stderr, f'{fragment!r} not in stderr\n' + describe(proc)


def assert_usage_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """argparse's refusal: exit status 2, usage and ``error:`` on stderr, no traceback."""
    assert proc.returncode == 2, describe(proc)
    assert 'Traceback' not in proc.stderr and 'usage:' in proc.stderr, describe(proc)
    for fragment in fragments:
        assert fragment in proc.stderr, f'{fragment!r} not in stderr\n' + describe(proc)


def snapshot(folder: str) -> dict:
    """{relative path: bytes} of every file under ``folder`` (to prove it was not touched)."""
    out = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, folder)] = f.read()
    return out


def leftovers(folder: str) -> list:
    """Temporary siblings (``.<name>.partial-*`` / ``.<name>.old-*``) left beside ``folder``."""
    parent, name = osp.split(osp.abspath(folder))
    return sorted(
        n for n in os.listdir(parent)
        if n.startswith(f'.{name}.partial-') or n.startswith(f'.{name}.old-'))


def write_frames(folder: str, names: Sequence[str], size=(64, 48), seed: int = 0) -> list:
    """Small BGR frames (a moving square on a gradient) saved under ``names``; returns paths."""
    import cv2
    import numpy as np
    os.makedirs(folder, exist_ok=True)
    w, h = size
    paths = []
    for i, name in enumerate(names):
        img = np.zeros((h, w, 3), np.uint8)
        img[:] = np.linspace(40, 200, w, dtype=np.uint8)[None, :, None]
        x = 4 + (3 * i + seed) % max(1, w - 20)
        img[h // 4:h // 4 + 12, x:x + 12] = (30, 30, 220)
        path = osp.join(folder, name)
        assert cv2.imwrite(path, img), path
        paths.append(path)
    return paths


def write_davis_tree(root: str) -> None:
    """A minimal DAVIS 2017 + text annotations tree (one 3-frame video per split) for
    ``tools/dataset_converters/davis_to_ytvos.py``."""
    import cv2
    import numpy as np
    from PIL import Image
    davis = osp.join(root, 'DAVIS')
    for vid, split in (('bear', 'train'), ('car', 'val')):
        os.makedirs(osp.join(davis, 'JPEGImages/480p', vid))
        os.makedirs(osp.join(davis, 'Annotations_unsupervised/480p', vid))
        for t in range(3):
            cv2.imwrite(
                osp.join(davis, 'JPEGImages/480p', vid, f'{t:05d}.jpg'),
                np.full((24, 32, 3), 50 * t, np.uint8))
            ids = np.zeros((24, 32), np.uint8)
            ids[4:7, 2:10] = 1
            png = Image.fromarray(ids, mode='P')
            png.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)
            png.save(osp.join(davis, 'Annotations_unsupervised/480p', vid, f'{t:05d}.png'))
        os.makedirs(osp.join(davis, 'ImageSets/2017'), exist_ok=True)
        with open(osp.join(davis, 'ImageSets/2017', f'{split}.txt'), 'a') as f:
            f.write(vid + '\n')
    text = osp.join(root, 'davis_text_annotations')
    os.makedirs(text)
    for name in ('Davis17_annot1.txt', 'Davis17_annot1_full_video.txt', 'Davis17_annot2.txt',
                 'Davis17_annot2_full_video.txt'):
        with open(osp.join(text, name), 'w') as f:
            f.write('bear 1 "a brown bear"\ncar 1 "a car"\n')

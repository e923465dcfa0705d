"""tools/misc/train_toy_sam2.py as a user runs it: a tiny SAM 2 trained on a toy benchmark is
saved as a transformers folder that the SAM 2 refiner loads, and a finished folder is only
replaced with --overwrite, after the new one is complete."""
import os
import os.path as osp
import subprocess
import sys

import torch

from rvos_test_utils import REPO_ROOT

TOOL = osp.join('tools', 'misc', 'train_toy_sam2.py')


def run(args, timeout=600):
    env = dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', OMP_NUM_THREADS='2')
    env.pop('PYTHONPATH', None)
    return subprocess.run([sys.executable, *args],
                          cwd=REPO_ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=timeout)


def test_trains_saves_and_loads_in_the_refiner(tmp_path):
    root = str(tmp_path / 'toy')
    proc = run([
        'tools/make_toy_dataset.py', root, '--seed', '2', '--num-train', '2', '--num-valid', '1',
        '--num-frames', '6'
    ])
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = str(tmp_path / 'sam2')
    proc = run([TOOL, out, '--data-root', root, '--iters', '3', '--image-size', '64'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(out)) == ['config.json', 'model.safetensors']
    from mmrvos.models.refiners import SAM2VideoRefiner
    refiner = SAM2VideoRefiner(out)
    assert refiner.image_size == 64
    assert refiner.sam2.config.multimask_output_for_tracking is False
    # the saved weights are the trained ones (not a fresh initialisation)
    fresh = type(refiner.sam2)(refiner.sam2.config)
    assert not torch.equal(fresh.mask_decoder.iou_token.weight,
                           refiner.sam2.mask_decoder.iou_token.weight)
    masks = torch.zeros(3, 40, 40, dtype=torch.bool)
    masks[1, 10:30, 10:30] = True
    refined, info = refiner.refine(torch.randn(3, 3, 40, 40), masks, torch.tensor([.1, .9, .2]))
    assert refined.shape == masks.shape and info['prompt_frame'] == 1

    before = open(osp.join(out, 'model.safetensors'), 'rb').read()
    proc = run([TOOL, out, '--data-root', root, '--iters', '1', '--image-size', '64'])
    assert proc.returncode == 2 and '--overwrite' in proc.stderr
    assert open(osp.join(out, 'model.safetensors'), 'rb').read() == before
    proc = run([
        TOOL, out, '--data-root', root, '--iters', '1', '--image-size', '64', '--overwrite',
        '--seed', '5'
    ])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert open(osp.join(out, 'model.safetensors'), 'rb').read() != before
    assert sorted(os.listdir(tmp_path)) == ['sam2', 'toy']


def test_refuses_a_missing_benchmark(tmp_path):
    proc = run([TOOL, str(tmp_path / 'out'), '--data-root', str(tmp_path / 'none')])
    assert proc.returncode == 2 and 'make_toy_dataset' in proc.stderr
    assert 'Traceback' not in proc.stderr

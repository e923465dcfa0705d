"""Smoke demo: the tiny ReferDINO (random weights) segments the four expressions of the real
DAVIS `judo` fixture and writes one PNG mask per frame.

    python tools/misc/smoke_demo.py [--fixture ../shared/fixtures/davis-judo] [--out outputs/demo]

Every run writes into a new timestamped folder under --out (nothing is overwritten).
"""
import argparse
import json
import os
import os.path as osp
import time

import numpy as np
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--fixture', default=osp.join(ROOT, '..', 'shared', 'fixtures',
                                                      'davis-judo'))
    parser.add_argument('--out', default=osp.join(ROOT, 'outputs', 'demo'))
    args = parser.parse_args()
    if not osp.isdir(args.fixture):
        raise SystemExit(f'fixture not found: {args.fixture}')

    from mmrvos.apis import inference_rvos, init_rvos_model

    meta = json.load(open(osp.join(args.fixture, 'meta_expressions.json')))['videos']
    run_dir = osp.join(args.out, time.strftime('%Y%m%d-%H%M%S'))
    os.makedirs(run_dir, exist_ok=False)
    model = init_rvos_model(osp.join(ROOT, 'configs', '_base_', 'models', 'referdino_tiny.py'))
    for vid, info in meta.items():
        exps = list(info['expressions'].items())
        t0 = time.time()
        results = inference_rvos(model, osp.join(args.fixture, 'JPEGImages', vid),
                                 [e['exp'] for _, e in exps])
        dt = time.time() - t0
        for (exp_id, exp), res in zip(exps, results):
            out = osp.join(run_dir, vid, exp_id)
            os.makedirs(out)
            for name, mask in zip(res['frame_names'], res['masks']):
                Image.fromarray(mask.astype(np.uint8) * 255).save(osp.join(out, f'{name}.png'))
            print(f'{vid}/{exp_id} "{exp["exp"]}": {len(res["masks"])} frames '
                  f'{res["masks"].shape[1]}x{res["masks"].shape[2]}, mean score '
                  f'{float(res["scores"].mean()):.3f} -> {out}')
        print(f'{vid}: {len(exps)} expressions x {len(info["frames"])} frames in {dt:.1f} s '
              '(tiny model, random weights: a smoke run, not a trained result)')
    print(f'outputs: {run_dir}')


if __name__ == '__main__':
    main()

"""Write the synthetic toy RVOS benchmark (Ref-YouTube-VOS layout).

Example::

    python tools/make_toy_dataset.py data/toy_rvos --seed 0 --num-train 2048 --num-valid 20

The output is byte-for-byte identical for the same arguments.
"""
import argparse
import importlib.util
import json
import os.path as osp


def _load_generator():
    """Import ``mmrvos/datasets/toy_rvos.py`` directly: it only needs numpy and Pillow, so the
    benchmark can be generated without the (compiled) OpenMMLab stack."""
    path = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'mmrvos', 'datasets',
                    'toy_rvos.py')
    spec = importlib.util.spec_from_file_location('mmrvos_toy_rvos', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(toy):
    parser = argparse.ArgumentParser(description='Generate the toy RVOS benchmark')
    parser.add_argument('out_dir', help='dataset root to write')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=toy.NUM_TRAIN_VIDEOS)
    parser.add_argument('--num-valid', type=int, default=toy.NUM_VALID_VIDEOS)
    parser.add_argument('--num-frames', type=int, default=10)
    parser.add_argument('--width', type=int, default=160)
    parser.add_argument('--height', type=int, default=128)
    return parser.parse_args()


def main():
    toy = _load_generator()
    args = parse_args(toy)
    stats = toy.make_toy_rvos(args.out_dir, seed=args.seed, num_train=args.num_train,
                              num_valid=args.num_valid, num_frames=args.num_frames,
                              size=(args.width, args.height))
    print(json.dumps(stats, indent=1, sort_keys=True))
    print(f'toy RVOS written to {args.out_dir}')


if __name__ == '__main__':
    main()

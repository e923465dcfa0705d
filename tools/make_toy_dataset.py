"""Write the synthetic toy RVOS benchmark (Ref-YouTube-VOS layout).

Example::

    python tools/make_toy_dataset.py data/toy_rvos --seed 0 --num-train 2048 --num-valid 20

The output is byte-for-byte identical for the same arguments. A non-empty output folder is
refused unless ``--overwrite``; with it the benchmark is built into a temporary folder beside
it and replaces the old one only once complete (so no stale video of an earlier, larger
benchmark is left behind), and only if the old folder holds nothing but a toy benchmark
(``train/``, ``valid/``, ``meta_expressions/``). Errors print ``error: ...`` and exit with
status 2.
"""
import argparse
import importlib.util
import json
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOY_OUTPUTS = ('train', 'valid', 'meta_expressions')


def _load(rel_path: str, name: str):
    """Import one file of the package directly: the generator only needs numpy and Pillow,
    and the helpers here only the standard library, so the benchmark can be generated
    without the (compiled) OpenMMLab stack."""
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, *rel_path.split('/')))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_generator():
    return _load('mmrvos/datasets/synthetic/toy_generator.py', 'mmrvos_toy_generator')


def _positive_int(value):
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
    return number


def parse_args(toy, argv=None):
    parser = argparse.ArgumentParser(description='Generate the toy RVOS benchmark')
    parser.add_argument('out_dir', help='dataset root to write (new or empty, or --overwrite)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=toy.NUM_TRAIN_VIDEOS)
    parser.add_argument('--num-valid', type=int, default=toy.NUM_VALID_VIDEOS)
    parser.add_argument('--num-frames', type=_positive_int, default=10)
    parser.add_argument('--width', type=_positive_int, default=160)
    parser.add_argument('--height', type=_positive_int, default=128)
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace an existing toy benchmark in out_dir (after the new one '
        'is complete)')
    args = parser.parse_args(argv)
    if args.width < 64 or args.height < 48:
        parser.error(f'frames of {args.width}x{args.height} are too small for the toy objects '
                     '(at least 64x48)')
    for name in ('num_train', 'num_valid'):
        if getattr(args, name) < 0:
            parser.error(f'--{name.replace("_", "-")} must be >= 0')
    return args


def main(argv=None):
    toy = _load_generator()
    args = parse_args(toy, argv)
    output_dir = _load('mmrvos/fileio/output_dir.py', 'mmrvos_output_dir')
    with output_dir.StagedOutputDir(args.out_dir, args.overwrite, expected=TOY_OUTPUTS) as tmp:
        try:
            stats = toy.make_toy_rvos(
                tmp,
                seed=args.seed,
                num_train=args.num_train,
                num_valid=args.num_valid,
                num_frames=args.num_frames,
                size=(args.width, args.height))
        except RuntimeError as err:  # the generator's "enlarge the frame"
            raise ValueError(f'{args.width}x{args.height} frames: {err}') from err
    print(json.dumps(stats, indent=1, sort_keys=True))
    print(f'toy RVOS written to {args.out_dir}')
    return stats


if __name__ == '__main__':
    sys.exit(_load('mmrvos/apis/cli.py', 'mmrvos_cli').run_cli(main))

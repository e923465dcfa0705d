"""Score a folder of predicted PNG masks with the DAVIS J&F protocol.

Examples::

    # Ref-YouTube-VOS / MeViS layout: <pred_dir>/<video>/<exp_id>/<frame>.png
    python tools/eval_masks.py data/ref-youtube-vos/valid work_dirs/preds \\
        --out work_dirs/preds_jf.json
    # MeViS (targets from mask_dict.json)
    python tools/eval_masks.py data/mevis/valid_u preds --mask-dict mask_dict.json
    # DAVIS layout (one PNG per frame, pixel = object id), Ref-DAVIS annotators
    python tools/eval_masks.py ../shared/fixtures/davis-judo \\
        ../shared/fixtures/davis-judo/predictions/rvos --layout object

Prints a table (overall, per annotator, per expression type) and writes
per-expression / per-frame J and F as JSON. A missing prediction PNG is an
error naming the file unless ``--missing empty`` (scored as empty, warned).
An expression with no frame to score (its object is in no annotation PNG,
no ``obj_id``) is an error listing them unless ``--no-strict`` (left out of
the average with a warning giving their count). Bad input (a missing folder
or file, invalid JSON, a wrong meta layout, a bad mask) ends with
``error: ...`` naming the file and exit status 2.
"""
import argparse
import json
import os.path as osp
import sys

from mmrvos.apis.cli import CLIError, run_cli
from mmrvos.evaluation.functional import (RVOSGroundTruth, evaluate_prediction_dir,
                                          format_rvos_table, summarize_rvos)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('data_root', help='dataset folder (meta file, Annotations)')
    p.add_argument('pred_dir', help='folder of predicted PNGs')
    p.add_argument('--meta-file', default='meta_expressions.json')
    p.add_argument('--ann-dir', default='Annotations')
    p.add_argument(
        '--img-dir',
        default=None,
        help='frames giving the frame size (default: '
        '<data_root>/JPEGImages when present)')
    p.add_argument('--mask-dict', default=None, help='MeViS mask_dict.json (relative to data_root)')
    p.add_argument('--layout', choices=['expression', 'object'], default='expression')
    p.add_argument('--missing', choices=['error', 'empty'], default='error')
    p.add_argument(
        '--annotators',
        action='store_true',
        help='Ref-DAVIS: mean per annotator, then over the four')
    p.add_argument('--videos', nargs='+', default=None)
    p.add_argument('--bound-th', type=float, default=0.008)
    p.add_argument(
        '--no-strict',
        dest='strict',
        action='store_false',
        help='leave expressions that no frame can score out of '
        'the average with a warning (default: error listing them)')
    p.add_argument('--out', default=None, help='JSON output (default: <pred_dir>_jf.json)')
    p.add_argument('--overwrite', action='store_true', help='replace an existing JSON output')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = args.out or osp.normpath(args.pred_dir) + '_jf.json'
    if osp.exists(out) and not args.overwrite:
        sys.exit(f'error: {out} exists; pass --overwrite to replace it')
    if not osp.isdir(args.data_root):
        raise FileNotFoundError(f'data_root not found: {args.data_root}')
    img_dir = args.img_dir
    if img_dir is not None and not osp.isdir(img_dir):
        raise FileNotFoundError(f'--img-dir not found: {img_dir}')
    if img_dir is None and osp.isdir(osp.join(args.data_root, 'JPEGImages')):
        img_dir = osp.join(args.data_root, 'JPEGImages')
    gt = RVOSGroundTruth(
        args.data_root,
        meta_file=args.meta_file,
        ann_dir=args.ann_dir,
        mask_dict_file=args.mask_dict)
    records = evaluate_prediction_dir(
        gt,
        args.pred_dir,
        layout=args.layout,
        missing=args.missing,
        img_dir=img_dir,
        with_annotator=args.annotators,
        videos=args.videos,
        bound_th=args.bound_th,
        strict=args.strict)
    if not records:
        raise ValueError(f'no expression of {gt.meta_path} could be scored')
    summary = summarize_rvos(records)
    print(format_rvos_table(summary, f'J&F of {args.pred_dir}'))
    with open(out, 'w') as f:
        json.dump(dict(summary=summary, expressions=records), f, indent=1)
    print(f'per-expression results written to {out}')
    return summary


def _main_user_errors(argv=None):
    """``main``, with the ground truth's ``KeyError`` (unknown video, expression or
    ``anno_id``: a user's data, named in the message) reported as a clear error."""
    try:
        return main(argv)
    except KeyError as e:
        raise CLIError(e.args[0] if e.args else str(e)) from None


def cli(argv=None) -> int:
    """The command line: bad input -> ``error: ...`` on stderr and exit status 2, no
    traceback (``MMRVOS_DEBUG=1`` shows it); see :func:`mmrvos.apis.cli.run_cli`."""
    return run_cli(_main_user_errors, argv)


if __name__ == '__main__':
    sys.exit(cli())

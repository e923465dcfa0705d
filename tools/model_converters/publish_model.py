"""Turn a training checkpoint into a release file and a model-index (metafile) entry.

The release keeps ``meta`` (versions, dataset meta, epoch) and the ``state_dict`` with LoRA
merged (see merge_lora.py); optimizer state, schedulers and the message hub are dropped. It is
saved as ``<out-dir>/<name>-<sha256[:8]>.pth``. With ``--metafile`` an entry (config, weights
URL, metrics) is added in OpenMMLab's model-index format. Existing files and entries are never
replaced without ``--overwrite``.

Example::

    python tools/model_converters/publish_model.py work_dirs/x/epoch_2.pth \\
        --name referdino_swin-t_8xb1-2e_ref-ytvos \\
        --config configs/referdino/referdino_swin-t_8xb1-2e_ref-ytvos.py \\
        --out-dir releases --metafile configs/referdino/metafile.yml \\
        --url-prefix https://example.org/mmrvos/v0.1 --metric "Ref-YouTube-VOS:J&F=67.5"
"""
import argparse
import os
import os.path as osp

from _common import refuse_overwrite, run_cli, save_checkpoint, sha256_of
from merge_lora import lora_alpha_of

from mmrvos.checkpoint_conversion.release import (metafile_entry, parse_metrics, release_checkpoint,
                                                  update_metafile)
from mmrvos.engine.checkpoint import load_checkpoint_file


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='training checkpoint')
    parser.add_argument('--name', required=True, help='release name (usually the config name)')
    parser.add_argument('--config', required=True, help='config the model was trained with')
    parser.add_argument('--out-dir', default='.', help='folder of the release file')
    parser.add_argument('--lora-alpha', type=float)
    parser.add_argument('--metafile', help='metafile.yml to add the entry to')
    parser.add_argument(
        '--url-prefix', default='', help='download URL prefix of the release file in the metafile')
    parser.add_argument(
        '--metric',
        action='append',
        default=[],
        help='DATASET:NAME=VALUE, repeatable (e.g. "Ref-YouTube-VOS:J&F=67.5")')
    parser.add_argument('--overwrite', action='store_true')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    metrics = parse_metrics(args.metric)
    ckpt = load_checkpoint_file(args.src, map_location='cpu')
    release, dropped = release_checkpoint(ckpt, lora_alpha_of(args.config, args.lora_alpha),
                                          args.src)
    os.makedirs(args.out_dir, exist_ok=True)
    tmp = osp.join(args.out_dir, f'{args.name}.pth.tmp-publish')
    save_checkpoint(release, tmp, overwrite=True)
    final = osp.join(args.out_dir, f'{args.name}-{sha256_of(tmp)[:8]}.pth')
    try:
        refuse_overwrite(final, args.overwrite)
    except SystemExit:
        os.remove(tmp)
        raise
    os.replace(tmp, final)
    print(f'dropped from the checkpoint: {dropped or "nothing"}')
    print(f'release: {final} ({release["meta"]["lora_merged_layers"]} LoRA layers merged)')
    if args.metafile:
        weights = (args.url_prefix.rstrip('/') + '/' if args.url_prefix else '') + \
            osp.basename(final)
        entry = metafile_entry(args.name, args.config, weights, metrics)
        try:
            update_metafile(args.metafile, entry, overwrite=args.overwrite)
        except FileExistsError as err:
            raise SystemExit(f'error: {err}') from None
        print(f'metafile entry {args.name!r} written to {args.metafile}')
    return final


if __name__ == '__main__':
    run_cli(main)

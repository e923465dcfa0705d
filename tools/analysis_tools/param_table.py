"""Print trainable vs frozen parameter counts per module of a config's model.

    python tools/analysis_tools/param_table.py configs/_base_/models/referdino_swin-t.py

A config whose text model is a hub name (bert-base-uncased) is built offline with a
BERT-base-sized random stand-in (counts are identical; weights do not matter here).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--depth', type=int, default=1)
    args = parser.parse_args()
    from benchmark import bert_base_dir
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    import mmrvos  # noqa: F401
    from mmrvos.apis.config import load_config
    from mmrvos.models.layers.lora import parameter_table
    cfg = load_config(args.config)
    text_model = cfg.model.get('language_model')
    if text_model is not None and not osp.isdir(text_model.name):
        text_model.name = bert_base_dir()
    model = MODELS.build(cfg.model)
    print(parameter_table(model, args.depth))


if __name__ == '__main__':
    from mmrvos.apis.cli import run_cli
    sys.exit(run_cli(main))

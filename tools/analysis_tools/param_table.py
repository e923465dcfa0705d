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
    from mmengine.config import Config
    register_all_modules()
    import mmrvos  # noqa: F401
    from mmrvos.models.layers.lora import parameter_table
    cfg = Config.fromfile(args.config)
    if not osp.isdir(cfg.model.language_model.name):
        cfg.model.language_model.name = bert_base_dir()
    model = MODELS.build(cfg.model)
    print(parameter_table(model, args.depth))


if __name__ == '__main__':
    main()

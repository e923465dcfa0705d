"""Write a tiny, randomly initialised RoBERTa (config + byte-level BPE + weights) for offline
tests and CPU demos of ReferFormer. Nothing is downloaded.

    python projects/ReferFormer/tools/make_tiny_roberta.py [OUT_DIR]

The BPE vocabulary is trained (``tokenizers``' ByteLevelBPETokenizer) on a small built-in corpus
of referring expressions; weights come from ``torch.manual_seed(0)``. Output (~100 KB):
``config.json``, ``vocab.json``, ``merges.txt``, ``model.safetensors``.
"""
import argparse
import os
import os.path as osp

DEFAULT_OUT = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'tests', 'data', 'tiny_roberta')
SPECIAL_TOKENS = ['<s>', '<pad>', '</s>', '<unk>', '<mask>']
COLOURS = ['red', 'green', 'blue', 'yellow', 'white', 'black', 'orange', 'purple']
SHAPES = ['circle', 'square', 'triangle', 'person', 'dog', 'car', 'cat', 'horse']
PLACES = [
    'on the left', 'on the right', 'at the top', 'at the bottom', 'in the middle', 'moving left',
    'moving right', 'moving up', 'moving down', 'that is bigger', 'that is smaller', 'next to the',
    'behind the', 'in front of the'
]


def corpus():
    """Deterministic referring expressions covering the toy benchmark's words."""
    return [f'a {c} {s} {p}' for c in COLOURS for s in SHAPES for p in PLACES]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', nargs='?', default=DEFAULT_OUT)
    parser.add_argument('--vocab-size', type=int, default=400)
    args = parser.parse_args(argv)

    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    os.makedirs(args.out_dir, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus(),
        vocab_size=args.vocab_size,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False)
    bpe.save_model(args.out_dir)
    tokenizer = RobertaTokenizerFast(
        vocab_file=osp.join(args.out_dir, 'vocab.json'),
        merges_file=osp.join(args.out_dir, 'merges.txt'))
    config = RobertaConfig(
        vocab_size=bpe.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=66,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = RobertaModel(config)  # with the pooler (ReferFormer's sentence feature)
    model.save_pretrained(args.out_dir, safe_serialization=True)
    print(f'tiny RoBERTa ({sum(p.numel() for p in model.parameters())} parameters, '
          f'vocab {config.vocab_size}) written to {args.out_dir}')


if __name__ == '__main__':
    main()

"""Write the tiny offline BERT (config, WordPiece vocab, weights) used by tests and the demo.

    python tools/misc/make_tiny_bert.py [--out tests/data/tiny_bert] [--seed 0]
    # a BERT-base-sized stand-in (random weights) for offline full-size benchmarks:
    python tools/misc/make_tiny_bert.py --out /tmp/bert_base_random --hidden-size 768 \
        --layers 12 --heads 12 --intermediate-size 3072 --vocab-size 30522

The result loads with ``transformers.AutoTokenizer/BertModel.from_pretrained(<dir>)`` and thus
with mmdet's ``BertModel(name=<dir>)``. The vocabulary holds BERT's special tokens, punctuation,
digits, single letters with their ``##`` continuations (so every lower-case word tokenizes
without ``[UNK]``) and a few hundred whole words used by referring expressions. The weights
are a deterministic random initialisation (seeded), i.e. the text model is untrained: it is a
stand-in with the right interfaces, not a language model.
"""
import argparse
import os
import string

WORDS = """
a an the this that these those it its is are was be being on in at of to from with by and or
not no near far next behind front back top bottom left right middle center centre side edge
corner above below under over between beside around up down away toward towards into out
moving moves move stays stay still static stopped stops stop standing stands sitting sits
kneeling walking walks running runs jumping jumps swinging turning turns grappling entering
enters leaving leaves appearing disappears going goes coming comes first last other another
one two three four big small large tiny little long short tall wide round
red green blue yellow orange purple pink white black gray grey brown cyan magenta
circle circles square squares triangle triangles rectangle box ring cross star diamond shape
object objects thing person people man men woman women boy girl child kid player players
judoka judokas mat wall floor ground arms arm hand hands head leg legs tail body
cat dog horse bird car bike ball animal fish cow sheep bear elephant giraffe zebra
his her their him them he she they who which while during
frame video clip scene picture image camera view
fast slowly slow quickly horizontally vertically diagonally straight
leftmost rightmost topmost uppermost lowest highest closest nearest farthest
""".split()


def build_vocab() -> list:
    specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    punct = list('.,;:!?\'"-()/&')
    singles = list(string.ascii_lowercase) + list(string.digits)
    pieces = ['##' + c for c in string.ascii_lowercase + string.digits]
    seen, vocab = set(), []
    for tok in specials + punct + singles + pieces + WORDS:
        if tok not in seen:
            seen.add(tok)
            vocab.append(tok)
    return vocab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='tests/data/tiny_bert')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--hidden-size', type=int, default=64)
    parser.add_argument('--layers', type=int, default=2)
    parser.add_argument('--heads', type=int, default=2)
    parser.add_argument(
        '--vocab-size',
        type=int,
        default=None,
        help='pad the vocabulary with [unusedN] tokens to this size (30522 '
        'for a bert-base-uncased-sized embedding table)')
    parser.add_argument(
        '--intermediate-size', type=int, default=None, help='FFN width (default: 2 x hidden size)')
    args = parser.parse_args()

    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    os.makedirs(args.out, exist_ok=True)
    vocab = build_vocab()
    if args.vocab_size:
        vocab += [f'[unused{i}]' for i in range(args.vocab_size - len(vocab))]
    vocab_file = os.path.join(args.out, 'vocab.txt')
    with open(vocab_file, 'w', encoding='utf-8') as f:
        f.write('\n'.join(vocab) + '\n')
    tokenizer = BertTokenizerFast(vocab_file=vocab_file, do_lower_case=True)
    tokenizer.save_pretrained(args.out)

    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=args.hidden_size,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=args.intermediate_size or args.hidden_size * 2,
        max_position_embeddings=256,
        type_vocab_size=2,
    )
    torch.manual_seed(args.seed)
    model = BertModel(config, add_pooling_layer=False)
    model.save_pretrained(args.out, safe_serialization=True)
    print(f'wrote tiny BERT ({sum(p.numel() for p in model.parameters())} parameters, '
          f'{len(vocab)} tokens) to {args.out}')


if __name__ == '__main__':
    main()

"""Bidirectional key-renaming rules between the official Grounding DINO / ReferDINO layout
and mmrvos (mmdet) names.

A :class:`KeyRule` pairs two templates such as ``'transformer.encoder.layers.{i}.norm1.{rest}'``
and ``'encoder.layers.{i}.norms.0.{rest}'``. ``{rest}`` matches any dotted tail, every other
``{name}`` matches an integer. A rule may carry value transforms for the two directions (the
Swin patch-merging channel order). Several official templates may map to one mmrvos template:
the official model lists shared modules several times (``bbox_embed.{0..5}`` is one MLP,
``temporal_decoder.{0..5}`` one module, ``ref_point_head`` an alias of
``transformer.decoder.ref_point_head``).

Facts about the official layout (names only, read from the official code, commit 9a4cda1):
Swin ``backbone.0.layers.{i}.blocks.{j}.{norm1,attn,norm2,mlp.fc1,mlp.fc2}``,
``layers.{i}.downsample.{norm,reduction}``, ``patch_embed.proj``, ``norm{i}``; the decoder
layer runs ``self_attn -> norm2 -> ca_text -> catext_norm -> cross_attn -> norm1 -> linear1/2
-> norm3`` (mmdet: ``norms.0..3`` in execution order); the encoder layer
``self_attn -> norm1 -> ffn -> norm2``; FPN pixel decoder ``lay1..5``, ``gn1..5``,
``adapter1..3``, ``out_lay``; temporal block ``self_attn``, ``norm``, ``decoder``
(``nn.TransformerDecoderLayer``).
"""
import re
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor

_PLACEHOLDER = re.compile(r'\{(\w+)\}')


def _compile(template: str) -> 're.Pattern':
    """Template -> anchored regex (``{rest}``: any tail, other names: integers)."""
    out, pos = [], 0
    for m in _PLACEHOLDER.finditer(template):
        out.append(re.escape(template[pos:m.start()]))
        name = m.group(1)
        out.append(f'(?P<{name}>.+)' if name == 'rest' else f'(?P<{name}>\\d+)')
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile('^' + ''.join(out) + '$')


@dataclass
class KeyRule:
    """One official <-> mmrvos template pair.

    Args:
        official (str): template of the official key.
        ours (str): template of the mmrvos key.
        to_ours (callable, optional): value transform official -> mmrvos.
        to_official (callable, optional): value transform mmrvos -> official.
    """
    official: str
    ours: str
    to_ours: Optional[Callable[[Tensor], Tensor]] = None
    to_official: Optional[Callable[[Tensor], Tensor]] = None
    _re_official: 're.Pattern' = field(init=False, repr=False)
    _re_ours: 're.Pattern' = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._re_official = _compile(self.official)
        self._re_ours = _compile(self.ours)

    def forward(self, key: str) -> Optional[str]:
        """mmrvos name of an official ``key`` (None when the rule does not apply)."""
        m = self._re_official.match(key)
        return self.ours.format(**m.groupdict()) if m else None

    def inverse(self, key: str) -> Optional[str]:
        """Official name of an mmrvos ``key`` (None when the rule does not apply)."""
        m = self._re_ours.match(key)
        if not m:
            return None
        values = m.groupdict()
        missing = set(_PLACEHOLDER.findall(self.official)) - set(values)
        if missing:  # an official-only index: the rule is enumerated literally instead
            raise ValueError(f'rule {self.official!r} has unbound placeholders {missing}')
        return self.official.format(**values)


# ------------------------------------------------------------------ Swin patch merging
# The official PatchMerging concatenates the 2x2 neighbours as [x(0,0), x(1,0), x(0,1), x(1,1)]
# (row offset first) along channels, block-major: channel = block * C + c. mmdet's PatchMerging
# uses nn.Unfold, channel-major with the kernel position (kh * 2 + kw): channel = c * 4 + p.
# Official block b sits at unfold position p = (0, 2, 1, 3)[b] (the order is its own inverse).
_BLOCK_TO_UNFOLD = (0, 2, 1, 3)


def merging_official_to_mmdet(x: Tensor) -> Tensor:
    """Reorder the 4C input channels (last dim of a (out, 4C) weight, or a (4C,) norm
    parameter) from the official block-major order to mmdet's unfold order."""
    lead = x.shape[:-1]
    c = x.shape[-1] // 4
    blocks = x.reshape(*lead, 4, c)[..., list(_BLOCK_TO_UNFOLD), :]  # index = unfold position
    return blocks.transpose(-1, -2).reshape(*lead, 4 * c)


def merging_mmdet_to_official(x: Tensor) -> Tensor:
    """Inverse of :func:`merging_official_to_mmdet`."""
    lead = x.shape[:-1]
    c = x.shape[-1] // 4
    by_pos = x.reshape(*lead, c, 4).transpose(-1, -2)  # (..., unfold position, c)
    return by_pos[..., list(_BLOCK_TO_UNFOLD), :].reshape(*lead, 4 * c)


# ------------------------------------------------------------------ rule tables
_DECODER_LAYER = [  # official name inside a DeformableTransformerDecoderLayer -> mmdet
    ('self_attn.{rest}', 'self_attn.attn.{rest}'),
    ('norm2.{rest}', 'norms.0.{rest}'),
    ('ca_text.{rest}', 'cross_attn_text.attn.{rest}'),
    ('catext_norm.{rest}', 'norms.1.{rest}'),
    ('cross_attn.{rest}', 'cross_attn.{rest}'),
    ('norm1.{rest}', 'norms.2.{rest}'),
    ('linear1.{rest}', 'ffn.layers.0.0.{rest}'),
    ('linear2.{rest}', 'ffn.layers.1.{rest}'),
    ('norm3.{rest}', 'norms.3.{rest}'),
]
_ENCODER_LAYER = [
    ('self_attn.{rest}', 'self_attn.{rest}'),
    ('norm1.{rest}', 'norms.0.{rest}'),
    ('linear1.{rest}', 'ffn.layers.0.0.{rest}'),
    ('linear2.{rest}', 'ffn.layers.1.{rest}'),
    ('norm2.{rest}', 'norms.1.{rest}'),
]
_TEXT_LAYER = [('self_attn.{rest}', 'self_attn.attn.{rest}')] + _ENCODER_LAYER[1:]
_SWIN_BLOCK = [
    ('norm1.{rest}', 'norm1.{rest}'),
    ('attn.{rest}', 'attn.w_msa.{rest}'),
    ('norm2.{rest}', 'norm2.{rest}'),
    ('mlp.fc1.{rest}', 'ffn.layers.0.0.{rest}'),
    ('mlp.fc2.{rest}', 'ffn.layers.1.{rest}'),
]
_PIXEL_DECODER = [
    ('lay1', 'stem.0.conv'),
    ('gn1', 'stem.0.gn'),
    ('lay2', 'stem.1.conv'),
    ('gn2', 'stem.1.gn'),
    ('adapter1', 'adapters.0'),
    ('adapter2', 'adapters.1'),
    ('adapter3', 'adapters.2'),
    ('lay3', 'fuse.0.conv'),
    ('gn3', 'fuse.0.gn'),
    ('lay4', 'fuse.1.conv'),
    ('gn4', 'fuse.1.gn'),
    ('lay5', 'fuse.2.conv'),
    ('gn5', 'fuse.2.gn'),
    ('out_lay', 'out_conv'),
]

#: official keys with no mmrvos counterpart, and why (they are dropped and reported).
DROPPED_OFFICIAL = [
    (_compile('bert.pooler.{rest}'),
     "BERT pooler: unused by Grounding DINO (it reads last_hidden_state); mmdet's BertModel "
     'is built with add_pooling_layer=False'),
    (_compile('bert.embeddings.position_ids'),
     'constant position-id buffer of older transformers versions (not persistent now)'),
]

#: mmrvos keys of a Grounding DINO checkpoint that ReferDINO does not have.
DROPPED_MMDET = [
    (_compile('dn_query_generator.{rest}'),
     'denoising-query label embedding: ReferDINO uses no denoising queries'),
]


def _prefixed(pairs, official_prefix: str, ours_prefix: str, **kw) -> List[KeyRule]:
    return [KeyRule(official_prefix + o, ours_prefix + m, **kw) for o, m in pairs]


def official_rules(num_decoder_layers: int = 6,
                   num_neck_ins: int = 3,
                   num_levels: int = 4) -> List[KeyRule]:
    """All official <-> mmrvos rules of a ReferDINO (and Grounding DINO) model.

    Args:
        num_decoder_layers (int): L; the official box MLP and temporal decoder are listed L
            times and the encoder-proposal box MLP is ``reg_branches.L``.
        num_neck_ins (int): backbone levels with a 1x1 ``input_proj`` (``neck.convs``).
        num_levels (int): feature levels; the others are ``neck.extra_convs``.
    """
    rules: List[KeyRule] = []
    # Swin backbone
    rules += [
        KeyRule('backbone.0.patch_embed.proj.{rest}', 'backbone.patch_embed.projection.{rest}'),
        KeyRule('backbone.0.patch_embed.norm.{rest}', 'backbone.patch_embed.norm.{rest}'),
        KeyRule('backbone.0.norm{i}.{rest}', 'backbone.norm{i}.{rest}')
    ]
    rules += _prefixed(_SWIN_BLOCK, 'backbone.0.layers.{i}.blocks.{j}.',
                       'backbone.stages.{i}.blocks.{j}.')
    for part in ('reduction', 'norm'):
        rules.append(
            KeyRule(
                f'backbone.0.layers.{{i}}.downsample.{part}.{{rest}}',
                f'backbone.stages.{{i}}.downsample.{part}.{{rest}}',
                to_ours=merging_official_to_mmdet,
                to_official=merging_mmdet_to_official))
    # text
    rules += [
        KeyRule('bert.{rest}', 'language_model.language_backbone.body.model.{rest}'),
        KeyRule('feat_map.{rest}', 'text_feat_map.{rest}')
    ]
    # input projections (neck)
    for lvl in range(num_levels):
        ours = f'neck.convs.{lvl}' if lvl < num_neck_ins else \
            f'neck.extra_convs.{lvl - num_neck_ins}'
        rules += [
            KeyRule(f'input_proj.{lvl}.0.{{rest}}', f'{ours}.conv.{{rest}}'),
            KeyRule(f'input_proj.{lvl}.1.{{rest}}', f'{ours}.gn.{{rest}}')
        ]
    # transformer
    rules += [
        KeyRule('transformer.level_embed', 'level_embed'),
        KeyRule('transformer.tgt_embed.{rest}', 'query_embedding.{rest}'),
        KeyRule('transformer.enc_output.{rest}', 'memory_trans_fc.{rest}'),
        KeyRule('transformer.enc_output_norm.{rest}', 'memory_trans_norm.{rest}')
    ]
    rules += _prefixed(_ENCODER_LAYER, 'transformer.encoder.layers.{i}.', 'encoder.layers.{i}.')
    rules += _prefixed(_TEXT_LAYER, 'transformer.encoder.text_layers.{i}.',
                       'encoder.text_layers.{i}.')
    rules.append(
        KeyRule('transformer.encoder.fusion_layers.{i}.{rest}', 'encoder.fusion_layers.{i}.{rest}'))
    rules += _prefixed(_DECODER_LAYER, 'transformer.decoder.layers.{i}.', 'decoder.layers.{i}.')
    rules += [
        KeyRule('transformer.decoder.norm.{rest}', 'decoder.norm.{rest}'),
        KeyRule('transformer.decoder.ref_point_head.{rest}', 'decoder.ref_point_head.{rest}'),
        KeyRule('ref_point_head.{rest}', 'decoder.ref_point_head.{rest}')
    ]
    # box MLPs: official MLP ``layers.{m}`` <-> mmdet Sequential index 2m (Linear, ReLU, ...)
    for m in range(3):
        rules.append(
            KeyRule(f'transformer.enc_out_bbox_embed.layers.{m}.{{rest}}',
                    f'bbox_head.reg_branches.{num_decoder_layers}.{2 * m}.{{rest}}'))
        for lid in range(num_decoder_layers):
            ours = f'bbox_head.reg_branches.{lid}.{2 * m}.{{rest}}'
            rules += [
                KeyRule(f'bbox_embed.{lid}.layers.{m}.{{rest}}', ours),
                KeyRule(f'transformer.decoder.bbox_embed.{lid}.layers.{m}.{{rest}}', ours)
            ]
    # ReferDINO modules
    rules += _prefixed(_DECODER_LAYER, 'mask_decoder.{i}.', 'bbox_head.mask_decoder.layers.{i}.')
    rules += [
        KeyRule(f'pixel_decoder.{o}.{{rest}}', f'pixel_decoder.{m}.{{rest}}')
        for o, m in _PIXEL_DECODER
    ]
    for k in range(num_decoder_layers):
        src, dst = f'temporal_decoder.{k}.', 'temporal.temporal_decoder.'
        rules += [
            KeyRule(src + 'layer.{i}.self_attn.{rest}', dst + 'blocks.{i}.self_attn.{rest}'),
            KeyRule(src + 'layer.{i}.norm.{rest}', dst + 'blocks.{i}.norm.{rest}'),
            KeyRule(src + 'layer.{i}.decoder.{rest}', dst + 'blocks.{i}.cross.{rest}'),
            KeyRule(src + 'norm.{i}.{rest}', dst + 'norms.{i}.{rest}')
        ]
    return rules


def match_dropped(key: str, table) -> Optional[str]:
    """Reason why ``key`` is dropped (None if it is not in ``table``)."""
    for pattern, reason in table:
        if pattern.match(key):
            return reason
    return None


def rename_official(key: str, rules: List[KeyRule]) -> Tuple[Optional[str], Optional[KeyRule]]:
    """mmrvos name and rule of an official key; ``(None, None)`` if no rule applies.

    Raises:
        ValueError: more than one rule applies (a bug in the rule table).
    """
    hits = [(r.forward(key), r) for r in rules]
    hits = [(k, r) for k, r in hits if k is not None]
    if len(hits) > 1:
        raise ValueError(f'ambiguous key {key!r}: rules {[r.official for _, r in hits]}')
    return hits[0] if hits else (None, None)


def rename_ours(key: str, rules: List[KeyRule]) -> List[Tuple[str, KeyRule]]:
    """All official names (and rules) of an mmrvos key: one per listing of a shared module."""
    out = []
    for rule in rules:
        name = rule.inverse(key)
        if name is not None:
            out.append((name, rule))
    if len({r.ours for _, r in out}) > 1:
        raise ValueError(f'ambiguous key {key!r}: rules {[r.ours for _, r in out]}')
    return out


def same_tensor(a: Tensor, b: Tensor) -> bool:
    """Identical shape, dtype and values."""
    return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))

"""The official ReferDINO Swin-T key layout (names and counts of PAPER_NOTES, shapes of the
official model recorded in tests/data/official_manifest/) produced from the full-size mmrvos
config, and the Swin patch-merging channel order against the official definition."""
import json
import os.path as osp
import shutil
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.config import Config

from mmrvos.checkpoint_conversion import mmrvos_to_official, official_to_mmrvos, peft_modules
from mmrvos.checkpoint_conversion.key_rules import (merging_mmdet_to_official,
                                                    merging_official_to_mmdet)
from mmrvos.checkpoint_conversion.lora_convert import loralib_modules
from rvos_test_utils import REPO_ROOT, TINY_BERT

# Observed from the official model (commit 9a4cda1, Swin-T, LoRA rank 32): 1,772 entries.
OFFICIAL_COUNTS = {
    'backbone': 189,
    'bert': 199,
    'transformer': 742,
    'temporal_decoder': 468,
    'mask_decoder': 84,
    'bbox_embed': 36,
    'pixel_decoder': 28,
    'input_proj': 16,
    'ref_point_head': 8,
    'feat_map': 2
}
# mmrvos builds BERT without its pooler (mmdet's BertModel, add_pooling_layer=False); the
# pooler is unused by Grounding DINO, dropped on import and cannot be written on export.
NOT_REPRESENTED = {'bert.pooler.dense.weight', 'bert.pooler.dense.bias'}
# Names read from the official code (groundingdino.py, transformer.py, fuse_modules.py,
# segmentation.py, temporal_modules.py, swin_transformer.py, loralib).
OFFICIAL_NAMES = [
    'backbone.0.patch_embed.proj.weight',
    'backbone.0.norm3.bias',
    'backbone.0.layers.2.blocks.5.attn.relative_position_index',
    'backbone.0.layers.2.blocks.5.mlp.fc2.bias',
    'backbone.0.layers.2.downsample.reduction.weight',
    'bert.embeddings.word_embeddings.weight',
    'bert.encoder.layer.11.output.LayerNorm.bias',
    'feat_map.weight',
    'input_proj.3.0.weight',
    'input_proj.0.1.bias',
    'transformer.level_embed',
    'transformer.tgt_embed.weight',
    'transformer.enc_output.weight',
    'transformer.enc_output_norm.bias',
    'transformer.enc_out_bbox_embed.layers.2.weight',
    'transformer.encoder.layers.5.self_attn.sampling_offsets.lora_A',
    'transformer.encoder.layers.0.linear2.lora_B',
    'transformer.encoder.layers.0.norm2.weight',
    'transformer.encoder.text_layers.3.self_attn.in_proj_weight',
    'transformer.encoder.text_layers.3.linear1.lora_A',
    'transformer.encoder.fusion_layers.2.gamma_v',
    'transformer.encoder.fusion_layers.2.attn.out_l_proj.lora_B',
    'transformer.decoder.layers.4.ca_text.out_proj.weight',
    'transformer.decoder.layers.4.catext_norm.weight',
    'transformer.decoder.layers.4.cross_attn.value_proj.lora_A',
    'transformer.decoder.layers.4.norm3.bias',
    'transformer.decoder.norm.weight',
    'transformer.decoder.ref_point_head.layers.1.lora_B',
    'transformer.decoder.bbox_embed.5.layers.2.bias',
    'bbox_embed.5.layers.0.weight',
    'ref_point_head.layers.0.lora_A',
    'mask_decoder.2.cross_attn.sampling_offsets.weight',
    'mask_decoder.0.ca_text.in_proj_bias',
    'pixel_decoder.lay5.weight',
    'pixel_decoder.gn5.bias',
    'pixel_decoder.adapter3.weight',
    'pixel_decoder.out_lay.bias',
    'temporal_decoder.5.layer.2.decoder.multihead_attn.out_proj.bias',
    'temporal_decoder.0.layer.0.norm.weight',
    'temporal_decoder.3.norm.2.bias',
]


@pytest.fixture(scope='module')
def full_size(tmp_path_factory):
    """The Swin-T ReferDINO config (LoRA on) with a BERT-base-sized text model built offline
    (12 layers, 768 wide; the tiny vocabulary keeps the file small, key names are the same)."""
    from transformers import BertConfig, BertModel
    bert = str(tmp_path_factory.mktemp('bert_base'))
    BertModel(BertConfig(vocab_size=307), add_pooling_layer=False).save_pretrained(bert)
    for name in ('special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt'):
        shutil.copy(osp.join(TINY_BERT, name), bert)
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', '_base_', 'models', 'referdino_swin-t.py'))
    cfg.model.language_model.name = bert
    assert cfg.model.lora['rank'] == 32
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()  # else e.g. level_embed is uninitialised memory (may hold NaN)
    return model.state_dict()


def test_official_swin_t_key_counts(full_size):
    official, _ = mmrvos_to_official(full_size)
    counts = Counter(k.split('.')[0] for k in official)
    expected = dict(OFFICIAL_COUNTS, bert=OFFICIAL_COUNTS['bert'] - len(NOT_REPRESENTED))
    assert dict(counts) == expected
    assert len(official) == 1772 - len(NOT_REPRESENTED)
    assert not NOT_REPRESENTED & set(official)
    missing = [k for k in OFFICIAL_NAMES if k not in official]
    assert not missing
    # loralib LoRA: rank 32 on the transformer's Linear layers (+ the ref_point_head alias)
    lora = loralib_modules(official)
    assert len(lora) == len(peft_modules(full_size)) + 2
    assert not any(x.endswith(('out_proj', 'bbox_embed')) or '.bbox_embed.' in x for x in lora)
    a = official['transformer.encoder.fusion_layers.0.attn.v_proj.lora_A']
    b = official['transformer.encoder.fusion_layers.0.attn.v_proj.lora_B']
    assert a.shape == (32, 256) and b.shape == (1024, 32)


def test_official_swin_t_export_has_the_official_shapes(full_size):
    """Every exported tensor has the shape of the official model's (manifest written by
    tools/model_converters/official_manifest.py from the official code); only BERT's word
    embeddings differ (the offline test vocabulary has 307 tokens, the official 30522)."""
    with open(osp.join(REPO_ROOT, 'tests', 'data', 'official_manifest',
                       'referdino_swin-t.json')) as f:
        manifest = json.load(f)['keys']
    official, _ = mmrvos_to_official(full_size)
    assert set(official) == set(manifest) - NOT_REPRESENTED
    vocab = 'bert.embeddings.word_embeddings.weight'
    wrong = {
        k: (list(v.shape), manifest[k][0])
        for k, v in official.items() if k != vocab and list(v.shape) != manifest[k][0]
    }
    assert not wrong
    assert list(official[vocab].shape) == [307, manifest[vocab][0][1]]


def test_official_swin_t_converts_back_without_missing_or_unexpected(full_size):
    official, _ = mmrvos_to_official(full_size)
    official.update({k: torch.zeros(1) for k in NOT_REPRESENTED})
    back, report = official_to_mmrvos(official, lora='keep')
    assert back.keys() == full_size.keys()
    assert all(torch.equal(back[k], full_size[k]) for k in full_size)
    assert set(report.dropped) == NOT_REPRESENTED


def test_patch_merging_order_matches_the_official_definition():
    """Official PatchMerging: cat([x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]])
    -> LayerNorm(4C) -> Linear(4C, 2C, bias=False); mmdet's (nn.Unfold) with converted
    weights gives the same output."""
    from mmcv.cnn.bricks.transformer import PatchMerging
    torch.manual_seed(0)
    c, h, w = 6, 4, 6
    x = torch.randn(2, h, w, c)
    norm_w, norm_b = torch.randn(4 * c), torch.randn(4 * c)
    reduction = torch.randn(2 * c, 4 * c)
    cat = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
    expected = F.linear(F.layer_norm(cat, (4 * c, ), norm_w, norm_b), reduction)
    merging = PatchMerging(c, 2 * c, norm_cfg=dict(type='LN'), bias=False)
    merging.norm.weight.data = merging_official_to_mmdet(norm_w)
    merging.norm.bias.data = merging_official_to_mmdet(norm_b)
    merging.reduction.weight.data = merging_official_to_mmdet(reduction)
    out, shape = merging(x.reshape(2, h * w, c), (h, w))
    assert shape == (h // 2, w // 2)
    torch.testing.assert_close(out.reshape(expected.shape), expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(merging_mmdet_to_official(merging_official_to_mmdet(reduction)), reduction)

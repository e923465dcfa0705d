"""Official ReferDINO checkpoints (key layout and shapes recorded from the official model in
``tests/data/official_manifest/``) convert with ``referdino_to_mmrvos.py`` and load strictly
into the shipped Swin-T / Swin-B Ref-YouTube-VOS configs.

For each manifest a random official-layout checkpoint with exactly those keys and shapes is
written (shared official modules listed several times hold one tensor, as in the official
model), converted by the tool as a user runs it (LoRA kept and merged), and loaded with
``strict=True``. Converted tensors are compared with the source tensors they come from.
"""
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.config import Config

from rvos_test_utils import REPO_ROOT, TINY_BERT

MANIFESTS = osp.join(REPO_ROOT, 'tests', 'data', 'official_manifest')
CONFIGS = {
    'referdino_swin-t': 'configs/referdino/referdino_swin-t_8xb1-2e_ref-ytvos.py',
    'referdino_swin-b': 'configs/referdino/referdino_swin-b_8xb1-2e_ref-ytvos.py',
}
OFFICIAL_CONFIGS = {
    'referdino_swin-t': 'configs/ytvos_swint.yaml',
    'referdino_swin-b': 'configs/ytvos_swinb.yaml'
}
OFFICIAL_COMMIT = '9a4cda16388f5186dd9b7ad8adaca0338d7f3558'
# Observed from the official Swin-T model (see test_official_layout.py).
SWIN_T_COUNTS = {
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
CONVERTER = 'tools/model_converters/referdino_to_mmrvos.py'
ENV = dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1')


def load_manifest(name):
    with open(osp.join(MANIFESTS, name + '.json')) as f:
        return json.load(f)


def shared_name(key):
    """The official model lists some modules several times (one object): ``bbox_embed.{i}``
    and ``transformer.decoder.bbox_embed.{i}`` (one box MLP), ``temporal_decoder.{i}`` (one
    temporal decoder), ``ref_point_head`` (= ``transformer.decoder.ref_point_head``)."""
    key = re.sub(r'^(transformer\.decoder\.)?bbox_embed\.\d+\.', 'bbox_embed.0.', key)
    key = re.sub(r'^temporal_decoder\.\d+\.', 'temporal_decoder.0.', key)
    return re.sub(r'^ref_point_head\.', 'transformer.decoder.ref_point_head.', key)


def random_official_state(manifest, seed=0):
    gen = torch.Generator().manual_seed(seed)
    values, state = {}, {}
    for key, (shape, dtype, _) in manifest['keys'].items():
        name = shared_name(key)
        if name not in values:
            if dtype == 'int64':
                values[name] = torch.randint(0, 1000, shape, generator=gen)
            else:
                assert dtype == 'float32', (key, dtype)
                values[name] = torch.randn(shape, generator=gen)
        state[key] = values[name]
    return state


def convert(src, dst, lora):
    proc = subprocess.run([sys.executable, CONVERTER, src, dst, '--lora', lora],
                          cwd=REPO_ROOT,
                          env=ENV,
                          capture_output=True,
                          text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'Traceback' not in proc.stderr
    return proc.stdout


@pytest.fixture(scope='module')
def bert_base(tmp_path_factory):
    """A BERT-base-sized text model (random weights, the official vocabulary size) built
    offline, with the tiny tokenizer (only the key names and shapes matter here)."""
    from transformers import BertConfig, BertModel
    path = str(tmp_path_factory.mktemp('bert_base'))
    BertModel(BertConfig(), add_pooling_layer=False).save_pretrained(path)
    for name in ('special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt'):
        shutil.copy(osp.join(TINY_BERT, name), path)
    return path


def build(name, bert, lora=True):
    cfg = Config.fromfile(osp.join(REPO_ROOT, CONFIGS[name]))
    cfg.model.language_model.name = bert
    if not lora:
        cfg.model.lora = None
    return MODELS.build(cfg.model)


def load_converted(path):
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    return ckpt['state_dict']


def patch_merging_official(x, norm_w, norm_b, reduction):
    """Official Swin PatchMerging on (B, H, W, C): 2x2 neighbours concatenated block by block
    (x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]) -> LayerNorm -> Linear."""
    cat = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
    return F.linear(F.layer_norm(cat, (cat.shape[-1], ), norm_w, norm_b), reduction)


# ------------------------------------------------------------------ the manifests themselves
@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_manifest_records_the_official_model(name):
    manifest = load_manifest(name)
    assert manifest['official_commit'] == OFFICIAL_COMMIT
    assert manifest['config'] == OFFICIAL_CONFIGS[name]
    keys = manifest['keys']
    assert manifest['num_keys'] == len(keys)
    counts = Counter(k.split('.')[0] for k in keys)
    if name == 'referdino_swin-t':
        assert dict(counts) == SWIN_T_COUNTS and len(keys) == 1772
    else:  # Swin-B: 18 blocks in stage 3 (12 more, 14 entries each), the rest as Swin-T
        assert dict(counts) == dict(SWIN_T_COUNTS, backbone=189 + 12 * 14)
    # facts read from the official code: mask-decoder FFN 1024 wide (the layer's default
    # d_ffn), transformer FFN 2048, LoRA rank 32, Swin-B width 128 / window 12
    assert keys['mask_decoder.0.linear1.weight'][0] == [1024, 256]
    assert keys['transformer.decoder.layers.0.linear1.weight'][0] == [2048, 256]
    assert keys['transformer.decoder.layers.0.linear1.lora_A'][0] == [32, 256]
    stride4 = 96 if name == 'referdino_swin-t' else 128
    assert keys['backbone.0.patch_embed.proj.weight'][0] == [stride4, 3, 4, 4]
    assert keys['pixel_decoder.adapter3.weight'][0] == [32, stride4, 1, 1]
    # the official fine-tuning trains LoRA, BERT's LayerNorms, not the transformer's norms
    assert keys['transformer.decoder.layers.0.linear1.lora_A'][2]
    assert not keys['transformer.decoder.layers.0.linear1.weight'][2]
    assert keys['bert.encoder.layer.3.output.LayerNorm.weight'][2]
    assert not keys['transformer.decoder.layers.0.norm1.weight'][2]
    assert not keys['transformer.enc_out_bbox_embed.layers.0.weight'][2]


def official_trainable(manifest):
    """(number of tensors, number of elements) the official fine-tuning trains, each shared
    module counted once."""
    unique = {shared_name(k): v for k, v in manifest['keys'].items() if v[2]}
    return len(unique), sum(int(np.prod(v[0])) for v in unique.values())


# ------------------------------------------------------------------ conversion + strict load
# Each conversion runs the tool in a new process on the checkpoint (~1 GB for Swin-B).
MODES = {'referdino_swin-t': ('keep', 'merge'), 'referdino_swin-b': ('keep', 'merge')}


@pytest.fixture(scope='module')
def conversions(tmp_path_factory):
    """name -> (official source dict, {mode: (converted file, tool output)}), made on first
    use."""
    cache = {}

    def get(name):
        if name not in cache:
            tmp = tmp_path_factory.mktemp(name)
            source = random_official_state(load_manifest(name))
            src = str(tmp / 'official.pth')
            torch.save({'model_state_dict': source}, src)
            outs = {
                mode: (str(tmp / f'{mode}.pth'), convert(src, str(tmp / f'{mode}.pth'), mode))
                for mode in MODES[name]
            }
            os.remove(src)
            cache[name] = (source, outs)
        return cache[name]

    return get


@pytest.mark.parametrize('name', sorted(MODES))
def test_lora_kept_loads_strictly_into_the_config(name, conversions, bert_base):
    src, outs = conversions(name)
    keep, out = outs['keep']
    assert 'dropped 2 keys (BERT pooler' in out
    assert 'LoRA: kept' in out
    model = build(name, bert_base)
    state = load_converted(keep)
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    got = model.state_dict()
    pairs = {
        'backbone.patch_embed.projection.weight': 'backbone.0.patch_embed.proj.weight',
        'backbone.stages.2.blocks.1.attn.w_msa.qkv.weight':
        'backbone.0.layers.2.blocks.1.attn.qkv.weight',
        'backbone.stages.3.blocks.1.ffn.layers.1.weight':
        'backbone.0.layers.3.blocks.1.mlp.fc2.weight',
        'backbone.norm0.weight': 'backbone.0.norm0.weight',
        'language_model.language_backbone.body.model.embeddings.word_embeddings.weight':
        'bert.embeddings.word_embeddings.weight',
        'language_model.language_backbone.body.model.encoder.layer.11.output.dense.weight':
        'bert.encoder.layer.11.output.dense.weight',
        'text_feat_map.weight': 'feat_map.weight',
        'neck.convs.0.conv.weight': 'input_proj.0.0.weight',
        'neck.extra_convs.0.conv.weight': 'input_proj.3.0.weight',
        'neck.extra_convs.0.gn.bias': 'input_proj.3.1.bias',
        'level_embed': 'transformer.level_embed',
        'query_embedding.weight': 'transformer.tgt_embed.weight',
        'memory_trans_fc.weight': 'transformer.enc_output.weight',
        # encoder: deformable self-attn (LoRA) -> norm1 -> FFN -> norm2; text layers; fusion
        'encoder.layers.2.self_attn.value_proj.base_layer.weight':
        'transformer.encoder.layers.2.self_attn.value_proj.weight',
        'encoder.layers.2.self_attn.value_proj.lora_A.default.weight':
        'transformer.encoder.layers.2.self_attn.value_proj.lora_A',
        'encoder.layers.2.norms.1.weight': 'transformer.encoder.layers.2.norm2.weight',
        'encoder.text_layers.4.self_attn.attn.in_proj_weight':
        'transformer.encoder.text_layers.4.self_attn.in_proj_weight',
        'encoder.fusion_layers.5.gamma_l': 'transformer.encoder.fusion_layers.5.gamma_l',
        'encoder.fusion_layers.0.attn.v_proj.lora_B.default.weight':
        'transformer.encoder.fusion_layers.0.attn.v_proj.lora_B',
        # decoder layer: self-attn -> norm2, text cross-attn -> catext_norm, deformable
        # cross-attn -> norm1, FFN -> norm3 (mmdet: norms.0..3 in execution order)
        'decoder.layers.3.norms.0.weight': 'transformer.decoder.layers.3.norm2.weight',
        'decoder.layers.3.norms.1.weight': 'transformer.decoder.layers.3.catext_norm.weight',
        'decoder.layers.3.norms.2.weight': 'transformer.decoder.layers.3.norm1.weight',
        'decoder.layers.3.norms.3.weight': 'transformer.decoder.layers.3.norm3.weight',
        'decoder.layers.3.ffn.layers.0.0.base_layer.weight':
        'transformer.decoder.layers.3.linear1.weight',
        'decoder.layers.3.ffn.layers.0.0.lora_B.default.weight':
        'transformer.decoder.layers.3.linear1.lora_B',
        'decoder.layers.3.cross_attn_text.attn.out_proj.weight':
        'transformer.decoder.layers.3.ca_text.out_proj.weight',
        'decoder.norm.weight': 'transformer.decoder.norm.weight',
        'decoder.ref_point_head.layers.1.base_layer.weight':
        'transformer.decoder.ref_point_head.layers.1.weight',
        'decoder.ref_point_head.layers.1.lora_A.default.weight': 'ref_point_head.layers.1.lora_A',
        # one box MLP shared by the decoder layers; its own for the encoder proposals
        'bbox_head.reg_branches.0.4.weight': 'bbox_embed.0.layers.2.weight',
        'bbox_head.reg_branches.5.2.bias': 'transformer.decoder.bbox_embed.5.layers.1.bias',
        'bbox_head.reg_branches.6.0.weight': 'transformer.enc_out_bbox_embed.layers.0.weight',
        # ReferDINO modules
        'bbox_head.mask_decoder.layers.1.ffn.layers.0.0.weight': 'mask_decoder.1.linear1.weight',
        'bbox_head.mask_decoder.layers.2.norms.2.bias': 'mask_decoder.2.norm1.bias',
        'bbox_head.mask_decoder.layers.0.cross_attn.sampling_offsets.weight':
        'mask_decoder.0.cross_attn.sampling_offsets.weight',
        'pixel_decoder.stem.0.conv.weight': 'pixel_decoder.lay1.weight',
        'pixel_decoder.fuse.2.gn.weight': 'pixel_decoder.gn5.weight',
        'pixel_decoder.adapters.2.weight': 'pixel_decoder.adapter3.weight',
        'pixel_decoder.out_conv.weight': 'pixel_decoder.out_lay.weight',
        'temporal.temporal_decoder.blocks.2.cross.linear1.weight':
        'temporal_decoder.4.layer.2.decoder.linear1.weight',
        'temporal.temporal_decoder.blocks.0.self_attn.in_proj_weight':
        'temporal_decoder.0.layer.0.self_attn.in_proj_weight',
        'temporal.temporal_decoder.norms.1.bias': 'temporal_decoder.3.norm.1.bias',
    }
    for ours, official in pairs.items():
        assert torch.equal(got[ours], src[official]), (ours, official)
    # the config's trainable set is the official one (Swin-T: 494 tensors, 15,335,924 values)
    trainable = [p.numel() for p in model.parameters() if p.requires_grad]
    assert (len(trainable), sum(trainable)) == official_trainable(load_manifest(name))
    assert not model.bbox_head.reg_branches[6][0].weight.requires_grad  # encoder proposals
    assert not model.decoder.layers[0].norms[0].weight.requires_grad
    # Swin patch merging with the converted weights computes the official formula
    down = model.backbone.stages[0].downsample
    gen = torch.Generator().manual_seed(1)
    c = down.reduction.in_features // 4
    x = torch.randn(1, 4, 6, c, generator=gen)
    with torch.no_grad():
        out, shape = down(x.reshape(1, 24, c), (4, 6))
        expected = patch_merging_official(x, src['backbone.0.layers.0.downsample.norm.weight'],
                                          src['backbone.0.layers.0.downsample.norm.bias'],
                                          src['backbone.0.layers.0.downsample.reduction.weight'])
    assert shape == (2, 3)
    torch.testing.assert_close(out.reshape(expected.shape), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('name', sorted(MODES))
def test_lora_merged_loads_strictly_into_the_config_without_lora(name, conversions, bert_base):
    src, outs = conversions(name)
    merge, out = outs['merge']
    assert 'LoRA: merged' in out
    model = build(name, bert_base, lora=False)
    result = model.load_state_dict(load_converted(merge), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    got = model.state_dict()
    # loralib: W + B @ A * alpha / r, alpha 1, r 32
    for ours, official in {
            'decoder.layers.3.ffn.layers.0.0.weight': 'transformer.decoder.layers.3.linear1',
            'encoder.fusion_layers.0.attn.v_proj.weight':
            'transformer.encoder.fusion_layers.0.attn.v_proj',
            'encoder.layers.5.self_attn.sampling_offsets.weight':
            'transformer.encoder.layers.5.self_attn.sampling_offsets',
            'decoder.ref_point_head.layers.0.weight': 'ref_point_head.layers.0'
    }.items():
        w, a, b = (src[f'{official}.{s}'].double() for s in ('weight', 'lora_A', 'lora_B'))
        torch.testing.assert_close(got[ours].double(), w + b @ a / 32, rtol=0, atol=1e-5)
    for ours, official in {
            'decoder.layers.3.ffn.layers.0.0.bias': 'transformer.decoder.layers.3.linear1.bias',
            'bbox_head.mask_decoder.layers.1.ffn.layers.1.weight': 'mask_decoder.1.linear2.weight',
            'bbox_head.reg_branches.6.4.bias': 'transformer.enc_out_bbox_embed.layers.2.bias',
    }.items():
        assert torch.equal(got[ours], src[official]), (ours, official)


def test_single_frame_config_trains_no_temporal_modules():
    """A2D-Sentences: the official code leaves "temporal" out of the trainable keywords for
    single-frame datasets; everything else as the Ref-YouTube-VOS policy."""
    ytvos = Config.fromfile(osp.join(REPO_ROOT, CONFIGS['referdino_swin-t'])).model.trainable
    a2d = Config.fromfile(
        osp.join(REPO_ROOT,
                 'configs/referdino/referdino_swin-b_8xb1-6e_a2d-sentences.py')).model.trainable
    assert list(a2d) == [p for p in ytvos if p != r'^temporal\.']


# ------------------------------------------------------------------ the manifest tool
def test_manifest_tool_rejects_a_folder_that_is_not_the_official_code(tmp_path):
    proc = subprocess.run([
        sys.executable, 'tools/model_converters/official_manifest.py', 'configs/ytvos_swint.yaml',
        '--official-repo',
        str(tmp_path), '--out',
        str(tmp_path / 'm.json')
    ],
                          cwd=REPO_ROOT,
                          env=ENV,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 1
    assert 'error:' in proc.stderr and 'is not a checkout of the official ReferDINO' in \
        proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'm.json').exists()

"""merge_lora.py, publish_model.py and groundingdino_to_referdino.py on a tiny model."""
import hashlib
import os.path as osp

import pytest
import torch
import yaml
from ckpt_test_utils import (TINY_LORA, assert_outputs_equal, build_tiny, load_tool, make_clip,
                             outputs, randomize, tiny_config)

from mmrvos.checkpoint_conversion import (REFERDINO_NEW_MODULES, CheckpointConversionError,
                                          check_against, mmrvos_to_official, peft_modules)
from mmrvos.compat import load_checkpoint_file
from rvos_test_utils import TINY_CONFIG


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A 'training checkpoint' of the tiny LoRA model: random weights, non-zero LoRA B,
    optimizer state and a message hub entry, saved as mmengine does."""
    model = randomize(build_tiny())
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optim.step()
    path = str(tmp_path_factory.mktemp('train') / 'epoch_1.pth')
    torch.save(
        dict(
            meta=dict(epoch=1, mmdet_version='3.3.0', work_dir='/secret/path'),
            state_dict=model.state_dict(),
            optimizer=optim.state_dict(),
            param_schedulers=[dict(last_epoch=1)]), path)
    inputs = torch.randn(1, 2, 3, 32, 64, generator=torch.Generator().manual_seed(4))
    clip = make_clip()
    return model, path, inputs, clip, outputs(model, inputs, clip)


def test_merge_lora_loads_into_the_config_without_lora(trained, tmp_path):
    model, path, inputs, clip, expected = trained
    tool = load_tool('merge_lora')
    dst = str(tmp_path / 'merged.pth')
    tool.main([path, dst, '--lora-alpha', str(TINY_LORA['alpha'])])
    ckpt = load_checkpoint_file(dst)
    assert set(ckpt) == {'meta', 'state_dict'}
    assert ckpt['meta']['lora_merged_layers'] == len(peft_modules(model.state_dict())) > 0
    plain = build_tiny(lora=None, seed=3)
    result = plain.load_state_dict(ckpt['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert_outputs_equal(outputs(plain, inputs, clip), expected, exact=False)
    with pytest.raises(SystemExit, match='--overwrite'):
        tool.main([path, dst])


def test_merge_uses_the_scaling_alpha_over_rank(trained, tmp_path):
    """Merging with the wrong alpha changes the outputs: the scaling really is applied."""
    model, path, inputs, clip, expected = trained
    tool = load_tool('merge_lora')
    dst = str(tmp_path / 'merged_wrong.pth')
    tool.main([path, dst, '--lora-alpha', '4.0'])
    plain = build_tiny(lora=None, seed=3)
    plain.load_state_dict(load_checkpoint_file(dst)['state_dict'], strict=True)
    got = outputs(plain, inputs, clip)
    assert not torch.allclose(got[-2]['boxes'], expected[-2]['boxes'], atol=1e-4)


def test_publish_writes_hashed_release_and_metafile(trained, tmp_path):
    model, path, inputs, clip, expected = trained
    tool = load_tool('publish_model')
    meta_path = str(tmp_path / 'metafile.yml')
    args = [
        path, '--name', 'referdino_tiny', '--config', TINY_CONFIG, '--out-dir',
        str(tmp_path / 'rel'), '--lora-alpha', '1.0', '--metafile', meta_path, '--url-prefix',
        'https://example.org/w', '--metric', 'Toy-RVOS:J&F=50.5', '--metric', 'Toy-RVOS:J=49.0'
    ]
    final = tool.main(args)
    with open(final, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    assert osp.basename(final) == f'referdino_tiny-{sha[:8]}.pth'
    ckpt = load_checkpoint_file(final)
    assert set(ckpt) == {'meta', 'state_dict'}  # optimizer, schedulers dropped
    assert 'work_dir' not in ckpt['meta'] and ckpt['meta']['epoch'] == 1
    assert not any('lora' in k or 'base_layer' in k for k in ckpt['state_dict'])
    plain = build_tiny(lora=None, seed=3)
    plain.load_state_dict(ckpt['state_dict'], strict=True)
    assert_outputs_equal(outputs(plain, inputs, clip), expected, exact=False)
    with open(meta_path) as f:
        meta = yaml.safe_load(f)
    entry = meta['Models'][0]
    assert entry['Name'] == 'referdino_tiny' and entry['Config'] == TINY_CONFIG
    assert entry['Weights'] == f'https://example.org/w/{osp.basename(final)}'
    assert entry['Results'] == [{
        'Task': 'Referring Video Object Segmentation',
        'Dataset': 'Toy-RVOS',
        'Metrics': {
            'J&F': 50.5,
            'J': 49.0
        }
    }]
    # same content -> same file name: refused without --overwrite, metafile entry too
    with pytest.raises(SystemExit, match='exists'):
        tool.main(args)
    assert tool.main(args + ['--overwrite']) == final
    with open(meta_path) as f:
        assert len(yaml.safe_load(f)['Models']) == 1


def test_bad_metric_and_incomplete_lora_are_clear_errors(trained, tmp_path):
    model, path, *_ = trained
    tool = load_tool('publish_model')
    with pytest.raises(ValueError, match='DATASET:NAME=VALUE'):
        tool.main([path, '--name', 'x', '--config', TINY_CONFIG, '--metric', 'J&F 67'])
    state = dict(model.state_dict())
    del state['encoder.layers.0.ffn.layers.1.lora_B.default.weight']
    bad = str(tmp_path / 'bad.pth')
    torch.save(dict(state_dict=state), bad)
    with pytest.raises(CheckpointConversionError, match='bad.pth.*ffn.layers.1'):
        tool.main([bad, '--name', 'x', '--config', TINY_CONFIG, '--out-dir', str(tmp_path)])


def _gdino_part(state):
    """The Grounding DINO part of a plain (no-LoRA) ReferDINO state dict."""
    new = [r'pixel_decoder.', 'temporal.', 'bbox_head.mask_decoder.']
    return {k: v for k, v in state.items() if not any(k.startswith(p) for p in new)}


@pytest.mark.parametrize('layout', ['mmdet', 'official'])
def test_grounding_dino_initialises_referdino(layout, tmp_path):
    source = randomize(build_tiny(lora=None, seed=2))
    gdino = _gdino_part(source.state_dict())
    if layout == 'official':
        gdino, _ = mmrvos_to_official(gdino)
        gdino = {'module.' + k: v for k, v in gdino.items()}
        gdino['module.bert.pooler.dense.weight'] = torch.zeros(64, 64)
    else:
        gdino['dn_query_generator.label_embedding.weight'] = torch.zeros(5, 256)
    src = str(tmp_path / 'gdino.pth')
    torch.save(dict(model=gdino) if layout == 'official' else dict(state_dict=gdino), src)
    config = tmp_path / 'referdino_tiny_lora.py'  # the tiny config with LoRA on
    config.write_text(f'_base_ = [{TINY_CONFIG!r}]\n'
                      f'model = dict(lora=dict(_delete_=True, **{TINY_LORA!r}), '
                      'bbox_head=dict(contrastive_cfg=dict(_delete_=True, max_text_len=256)))\n')
    tool = load_tool('groundingdino_to_referdino')
    dst = str(tmp_path / 'init.pth')
    tool.main([src, dst, '--config', str(config)])
    init = load_checkpoint_file(dst)['state_dict']
    target = build_tiny(seed=9)  # LoRA on
    report = check_against(init, target.state_dict(), allowed_missing=REFERDINO_NEW_MODULES)
    assert report.allowed_missing and all(
        k.startswith(('pixel_decoder.', 'temporal.', 'bbox_head.mask_decoder.')) or '.lora_' in k
        for k in report.allowed_missing)
    result = target.load_state_dict(init, strict=False)
    assert not result.unexpected_keys
    plain = source.state_dict()
    loaded = target.state_dict()
    for key in ('encoder.layers.0.self_attn.value_proj', 'decoder.ref_point_head.layers.0'):
        assert torch.equal(loaded[key + '.base_layer.weight'], plain[key + '.weight'])
    assert torch.equal(loaded['backbone.stages.1.downsample.reduction.weight'],
                       plain['backbone.stages.1.downsample.reduction.weight'])


def test_lora_rule_matches_inject_lora():
    """The name rule used for Grounding DINO files selects exactly the Linear layers that
    inject_lora wraps in the model."""
    from mmrvos.checkpoint_conversion import lora_rule_modules
    plain = build_tiny(lora=None).state_dict()
    assert lora_rule_modules(plain) == peft_modules(build_tiny().state_dict())
    assert tiny_config().model.lora['rank'] == 4

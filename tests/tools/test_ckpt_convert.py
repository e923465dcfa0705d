"""Official ReferDINO / Grounding DINO checkpoints <-> mmrvos: round trips, errors, layout."""
import pytest
import torch
from ckpt_test_utils import (assert_outputs_equal, build_tiny, make_clip, outputs, randomize,
                             tiny_config)
from mmdet.registry import MODELS

from mmrvos.checkpoint_conversion import (CheckpointConversionError, check_against, merge_loralib,
                                          mmrvos_to_official, official_to_mmrvos, peft_modules)
from mmrvos.checkpoint_conversion.lora_convert import loralib_modules


@pytest.fixture(scope='module')
def source():
    """A randomised tiny ReferDINO with LoRA, its outputs and its official-layout dict."""
    model = randomize(build_tiny())
    inputs = torch.randn(1, 2, 3, 32, 64, generator=torch.Generator().manual_seed(3))
    clip = make_clip()
    official, report = mmrvos_to_official(model.state_dict())
    return model, inputs, clip, outputs(model, inputs, clip), official


def test_official_layout_of_the_tiny_model(source):
    model, _, _, _, official = source
    # official names, LoRA in loralib form with non-zero B
    assert not any('base_layer' in k or '.default.' in k for k in official)
    lora_layers = loralib_modules(official)
    assert len(lora_layers) == len(peft_modules(model.state_dict())) + 2  # + ref_point_head alias
    assert all(official[f'{x}.lora_B'].abs().sum() > 0 for x in lora_layers)
    a = official['transformer.decoder.layers.0.cross_attn.value_proj.lora_A']
    b = official['transformer.decoder.layers.0.cross_attn.value_proj.lora_B']
    assert a.shape == (4, 256) and b.shape == (256, 4)
    # shared modules listed several times, as identical tensors
    for lid in range(model.decoder.num_layers):
        assert torch.equal(official[f'bbox_embed.{lid}.layers.2.weight'],
                           official['transformer.decoder.bbox_embed.0.layers.2.weight'])
        assert torch.equal(official[f'temporal_decoder.{lid}.norm.0.weight'],
                           official['temporal_decoder.0.norm.0.weight'])
    assert torch.equal(official['ref_point_head.layers.1.lora_A'],
                       official['transformer.decoder.ref_point_head.layers.1.lora_A'])


def test_round_trip_keeps_lora_and_outputs(source):
    _, inputs, clip, expected, official = source
    converted, report = official_to_mmrvos(dict(official), lora='keep')
    target = build_tiny(seed=7)
    result = target.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    check_against(converted, target.state_dict(), report)
    assert report.duplicates and not report.unmatched
    assert_outputs_equal(outputs(target, inputs, clip), expected, exact=True)


def test_merged_conversion_loads_into_a_model_without_lora(source):
    _, inputs, clip, expected, official = source
    converted, report = official_to_mmrvos(dict(official), lora='merge')
    assert not any('lora' in k or 'base_layer' in k for k in converted)
    target = build_tiny(lora=None, seed=7)
    result = target.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert 'merged' in report.lora
    assert_outputs_equal(outputs(target, inputs, clip), expected, exact=False)


def test_checkpoint_saved_after_eval_is_not_merged_twice(source):
    """loralib adds B@A*scaling into weight at eval(); such a file must not be merged again
    (merge) and must be un-merged when LoRA is kept."""
    official = source[4]
    merged_in_place = merge_loralib(dict(official))
    for name in loralib_modules(official):  # eval-time file: merged weight + LoRA tensors
        merged_in_place[f'{name}.lora_A'] = official[f'{name}.lora_A']
        merged_in_place[f'{name}.lora_B'] = official[f'{name}.lora_B']
    for lora in ('keep', 'merge'):
        expected, _ = official_to_mmrvos(dict(official), lora=lora)
        converted, _ = official_to_mmrvos(merged_in_place, lora=lora, lora_merged_in_weights=True)
        naive, _ = official_to_mmrvos(merged_in_place, lora=lora)
        assert converted.keys() == expected.keys()
        for key in expected:
            torch.testing.assert_close(converted[key], expected[key], rtol=0, atol=1e-6)
        lora_weights = [
            k for k in expected if 'value_proj' in k and k.endswith('weight') and 'lora' not in k
        ]
        assert lora_weights and not all(torch.allclose(naive[k], expected[k]) for k in lora_weights)


def test_shared_listings_must_be_identical(source):
    official = dict(source[4])
    bad = dict(official)
    bad['bbox_embed.2.layers.0.bias'] = bad['bbox_embed.2.layers.0.bias'] + 1
    with pytest.raises(CheckpointConversionError, match='bbox_embed.2.layers.0.bias'):
        official_to_mmrvos(bad)
    bad = dict(official)
    key = 'temporal_decoder.1.layer.0.norm.weight'
    bad[key] = bad[key] * 2
    with pytest.raises(CheckpointConversionError, match='shared module'):
        official_to_mmrvos(bad)


def test_unmatched_keys_are_an_error_unless_skipped(source):
    official = dict(source[4])
    official['transformer.decoder.something_new.weight'] = torch.zeros(3)
    with pytest.raises(CheckpointConversionError, match='something_new'):
        official_to_mmrvos(official, source='release.pth')
    converted, report = official_to_mmrvos(official, skip_unknown=True)
    assert 'transformer.decoder.something_new.weight' in report.dropped
    assert 'something_new' in report.format()


def test_bert_pooler_is_dropped_with_a_reason(source):
    official = dict(source[4])
    official['bert.pooler.dense.weight'] = torch.zeros(64, 64)
    official['bert.pooler.dense.bias'] = torch.zeros(64)
    converted, report = official_to_mmrvos(official)
    assert set(report.dropped) == {'bert.pooler.dense.weight', 'bert.pooler.dense.bias'}
    assert 'add_pooling_layer=False' in report.format()


def test_missing_tensor_is_reported_not_silently_initialised(source):
    official = dict(source[4])
    del official['pixel_decoder.gn3.weight']
    converted, report = official_to_mmrvos(official)
    target = build_tiny(seed=7)
    with pytest.raises(CheckpointConversionError, match='pixel_decoder.fuse.0.gn.weight'):
        check_against(converted, target.state_dict(), report)


def test_per_layer_box_mlps_cannot_be_exported(source):
    """The official model has one box MLP for all decoder layers; a model built with
    independent per-layer MLPs (``share_decoder_reg_branch=False``) cannot be exported."""
    cfg = tiny_config()
    cfg.model.bbox_head.share_decoder_reg_branch = False
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    randomize(model, share_box_mlp=False)
    with pytest.raises(CheckpointConversionError, match='reg_branches'):
        mmrvos_to_official(model.state_dict())
    # the default model ties them, so its state dict exports
    shared = build_tiny()
    assert shared.bbox_head.reg_branches[0] is shared.bbox_head.reg_branches[1]
    mmrvos_to_official(shared.state_dict())


def test_incomplete_lora_pair_is_an_error(source):
    official = dict(source[4])
    del official['transformer.encoder.layers.0.linear1.lora_B']
    with pytest.raises(KeyError, match=r'encoder\.layers\.0\.ffn\.layers\.0\.0\.lora_B'):
        official_to_mmrvos(official)


def test_referdino_to_mmrvos_cli(source, tmp_path):
    """The CLI reads an official release file ({'model_state_dict': ...}), converts it and
    refuses to overwrite its output."""
    from ckpt_test_utils import load_tool

    from mmrvos.compat import load_checkpoint_file
    model, official = source[0], source[4]
    src = str(tmp_path / 'ryvos_tiny.pth')
    torch.save(dict(model_state_dict=official, epoch=1), src)
    tool = load_tool('referdino_to_mmrvos')
    dst = str(tmp_path / 'converted.pth')
    tool.main([src, dst, '--lora', 'keep'])
    converted = load_checkpoint_file(dst)['state_dict']
    assert converted.keys() == model.state_dict().keys()
    assert all(torch.equal(converted[k], v) for k, v in model.state_dict().items())
    with pytest.raises(SystemExit, match='--overwrite'):
        tool.main([src, dst])
    tool.main([src, dst, '--lora', 'merge', '--overwrite'])
    build_tiny(lora=None).load_state_dict(load_checkpoint_file(dst)['state_dict'], strict=True)


def test_temporal_extensions_have_no_official_layout():
    """The toy config's trajectory embedding and gate cannot be exported: a clear error
    naming them, not a silently dropped tensor."""
    cfg = tiny_config()
    cfg.model.temporal_enhancer.temporal_decoder.update(motion_embed=True, zero_init_gate=True)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    with pytest.raises(CheckpointConversionError, match='motion_mlp'):
        mmrvos_to_official(model.state_dict())

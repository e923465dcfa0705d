"""Official MPG-SAM 2 checkpoints (key layout and shapes recorded from the official model in
``projects/MPG-SAM2/tests/data/official_manifest/``) convert with
``projects/MPG-SAM2/tools/mpg_sam2_to_mmrvos.py`` and load strictly into the full-size config.

Without 3.7 GB of weights: every manifest tensor is a single value broadcast to its shape
(``torch.save`` keeps the broadcast, so the files stay small) and the value is the key's index,
so each converted tensor names the official tensor it came from."""
import importlib
import json
import os
import os.path as osp
import subprocess
import sys
from collections import Counter, OrderedDict

import pytest
import torch
from mmengine.config import Config

import mmrvos  # noqa: F401
from rvos_test_utils import REPO_ROOT

PROJECT = osp.join(REPO_ROOT, 'projects', 'MPG-SAM2')
MANIFEST = osp.join(PROJECT, 'tests', 'data', 'official_manifest',
                    'mpg_sam2_beit3-large_sam2-hiera-l.json')
FULL = osp.join(PROJECT, 'configs', 'mpg_sam2_beit3-l_sam2-hiera-l_8xb1-6e_ref-ytvos.py')
TOOL = osp.join(PROJECT, 'tools', 'mpg_sam2_to_mmrvos.py')
MPG_EXTRAS = ('vtlfusion_module', 'mmfusion_module', 'objfusion_module', 'patch_linear')


def ckpt():
    return importlib.import_module('projects.MPG-SAM2.mpg_sam2.checkpoint')


@pytest.fixture(scope='module')
def manifest():
    with open(MANIFEST) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def official(manifest):
    """Official-layout state dict: key i holds the value i everywhere."""
    return OrderedDict((k, torch.full((1, ), float(i)).expand(v[0]))
                       for i, (k, v) in enumerate(manifest['keys'].items()))


@pytest.fixture(scope='module')
def model_state():
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    importlib.import_module('projects.MPG-SAM2.mpg_sam2')
    return ckpt().build_on_meta(Config.fromfile(FULL).model).state_dict()


def test_manifest_is_the_official_model(manifest):
    keys = manifest['keys']
    assert manifest['num_keys'] == len(keys) == 1939
    assert manifest['official_commit'] == '54291e049362db976c8d9441927728261032cbac'
    prefixes = Counter(
        k.split('.')[0] if not k.startswith('visual_model.') else '.'.join(k.split('.')[:2])
        for k in keys)
    assert prefixes['mm_extractor'] == 24 * 40 + 11  # BEiT-3 large
    assert prefixes['visual_model.image_encoder'] == 594  # Hiera-L + FPN
    assert prefixes['visual_model.sam_mask_decoder'] == 169
    total = sum(torch.Size(v[0]).numel() for v in keys.values())
    assert total == manifest['num_elements'] == 919_446_836
    # the image encoder is the only frozen part (plus SAM's random-feature buffer)
    frozen = {k for k, v in keys.items() if not v[2]}
    assert all(
        k.startswith('visual_model.image_encoder.') for k in frozen
        if 'positional_encoding_gaussian_matrix' not in k)


def test_conversion_loads_strictly_into_the_full_config(official, model_state):
    converted = ckpt().official_to_mmrvos(official)
    assert set(converted) == set(model_state)
    bad = [k for k in converted if converted[k].shape != model_state[k].shape]
    assert not bad, bad[:5]
    model = ckpt().build_on_meta(Config.fromfile(FULL).model)
    result = model.load_state_dict(converted, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_every_official_tensor_lands_once(official, manifest):
    converted = ckpt().official_to_mmrvos(official)
    names = list(manifest['keys'])
    sources = Counter()
    for key, value in converted.items():
        if key == 'sam2.prompt_encoder.point_embed.weight':  # 4 official rows concatenated
            rows = [names[int(v)] for v in value[:, 0]]
            assert rows == [
                f'visual_model.sam_prompt_encoder.point_embeddings.{i}.weight' for i in range(4)
            ]
            sources.update(rows)
            continue
        sources[names[int(value.reshape(-1)[0])]] += 1
    # every official key used; only the tied SAM positional buffer feeds two of ours
    assert set(sources) == set(names)
    assert [k for k, n in sources.items() if n > 1
            ] == ['visual_model.sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix']


@pytest.mark.parametrize('official_key,ours', [
    ('visual_model.image_encoder.trunk.blocks.0.mlp.layers.1.weight',
     'sam2.vision_encoder.backbone.blocks.0.mlp.proj_out.weight'),
    ('visual_model.image_encoder.neck.convs.2.conv.bias', 'sam2.vision_encoder.neck.convs.2.bias'),
    ('visual_model.memory_encoder.mask_downsampler.encoder.12.bias',
     'sam2.memory_encoder.mask_downsampler.final_conv.bias'),
    ('visual_model.memory_encoder.mask_downsampler.encoder.4.weight',
     'sam2.memory_encoder.mask_downsampler.layers.1.layer_norm.weight'),
    ('visual_model.memory_encoder.fuser.layers.0.gamma',
     'sam2.memory_encoder.memory_fuser.layers.0.scale'),
    ('visual_model.sam_mask_decoder.transformer.norm_final_attn.weight',
     'sam2.mask_decoder.transformer.layer_norm_final_attn.weight'),
    ('visual_model.sam_mask_decoder.iou_prediction_head.layers.1.bias',
     'sam2.mask_decoder.iou_prediction_head.layers.0.bias'),
    ('visual_model.obj_ptr_proj.layers.2.weight', 'sam2.object_pointer_proj.proj_out.weight'),
    ('visual_model.maskmem_tpos_enc', 'sam2.memory_temporal_positional_encoding'),
    ('visual_model.sam_mask_decoder.vtlfusion_module.multihead_attn.out_proj.weight',
     'sam2.mask_decoder.aggregator.pixel_global_fusion.attn.out_proj.weight'),
    ('visual_model.sam_mask_decoder.objfusion_module.norm2.bias',
     'sam2.mask_decoder.aggregator.object_history_fusion.norm2.bias'),
    ('visual_model.sam_mask_decoder.patch_linear.weight',
     'sam2.mask_decoder.aggregator.global_patch_proj.weight'),
    ('visual_ifi.self_attn.in_proj_weight',
     'mask_prior_generator.video_self_attn.self_attn.in_proj_weight'),
    ('vmtoken.multihead_attn.in_proj_bias',
     'mask_prior_generator.class_token_attn.attn.in_proj_bias'),
    ('mask_product.weight', 'mask_prior_generator.prior_head.weight'),
    ('text_hidden_fcs.0.2.weight', 'sparse_prompt_mlp.2.weight'),
    ('text2one_linear.bias', 'sentence_score.bias'),
    ('mm_extractor.beit3.encoder.layers.3.ffn.B.ffn_layernorm.weight',
     'multimodal_encoder.encoder.layers.3.ffn.B.ffn_layernorm.weight'),
])
def test_known_key_mappings(official, manifest, official_key, ours):
    converted = ckpt().official_to_mmrvos(official)
    index = list(manifest['keys']).index(official_key)
    assert int(converted[ours].reshape(-1)[0]) == index


def run(args, timeout=600):
    env = dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', OMP_NUM_THREADS='2')
    env.pop('PYTHONPATH', None)
    return subprocess.run([sys.executable, *args],
                          cwd=REPO_ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=timeout)


def test_cli_converts_a_release_folder(official, model_state, tmp_path):
    """A release folder as DeepSpeed + ``zero_to_fp32`` leave it (``module.evf_model.``
    prefix, ``pytorch_model.bin``), converted as a user runs the tool."""
    release = tmp_path / 'MPG-SAM2'
    release.mkdir()
    torch.save(
        OrderedDict(('module.evf_model.' + k, v) for k, v in official.items()),
        release / 'pytorch_model.bin')
    (release / 'config.json').write_text('{"model_type": "evf"}')
    dst = tmp_path / 'converted.pth'
    proc = run([TOOL, str(release), str(dst), '--config', FULL])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'matches the model: every key and shape' in proc.stdout
    saved = torch.load(dst, map_location='cpu', weights_only=True)['state_dict']
    assert set(saved) == set(model_state)
    assert all(saved[k].shape == model_state[k].shape for k in saved)
    assert os.path.getsize(dst) < 50 * 2**20  # broadcast tensors stay broadcast
    # refuses to overwrite
    proc = run([TOOL, str(release), str(dst)])
    assert proc.returncode != 0 and 'exists' in proc.stderr and 'Traceback' not in proc.stderr


def test_cli_initialisation_from_sam2_and_beit3(official, tmp_path):
    """Meta's SAM 2 file and the BEiT-3 file give their parts; the MPG modules are left to
    the model's initialisation."""
    sam2 = {
        k[len('visual_model.'):]: v
        for k, v in official.items()
        if k.startswith('visual_model.') and not any(e in k for e in MPG_EXTRAS)
    }
    beit3 = {
        'beit3.' + k[len('mm_extractor.beit3.'):]: v
        for k, v in official.items() if k.startswith('mm_extractor.beit3.')
    }
    torch.save({'model': sam2}, tmp_path / 'sam2_hiera_large.pt')
    torch.save({'model': beit3}, tmp_path / 'beit3_large_patch16_224.pth')
    dst = tmp_path / 'init.pth'
    proc = run([
        TOOL,
        str(tmp_path / 'sam2_hiera_large.pt'),
        str(tmp_path / 'beit3_large_patch16_224.pth'),
        str(dst), '--config', FULL
    ])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'converted sam2, beit3' in proc.stdout
    left = proc.stdout.split('left to the model')[1]
    for part in ('mask_prior_generator', 'sparse_prompt_mlp', 'text_proj', 'sentence_score',
                 'sam2'):
        assert part in left
    saved = torch.load(dst, map_location='cpu', weights_only=True)['state_dict']
    assert not any('aggregator' in k for k in saved)
    assert any(k.startswith('sam2.vision_encoder.') for k in saved)


def test_cli_refuses_pickled_code_and_foreign_files(tmp_path):

    class Payload:

        def __reduce__(self):
            return (os.system, ('touch ' + str(tmp_path / 'pwned'), ))

    torch.save({'model': {'x': torch.zeros(1)}, 'extra': Payload()}, tmp_path / 'evil.pth')
    proc = run([TOOL, str(tmp_path / 'evil.pth'), str(tmp_path / 'out.pth')])
    assert proc.returncode != 0 and proc.stderr.startswith('error: '), proc.stderr
    assert not (tmp_path / 'pwned').exists() and 'Traceback' not in proc.stderr
    torch.save({'state_dict': {'backbone.conv.weight': torch.zeros(1)}}, tmp_path / 'other.pth')
    proc = run([TOOL, str(tmp_path / 'other.pth'), str(tmp_path / 'out.pth')])
    assert proc.returncode != 0 and 'not an MPG-SAM 2, SAM 2 or BEiT-3 checkpoint' in proc.stderr
    proc = run([TOOL, str(tmp_path / 'missing'), str(tmp_path / 'out.pth')])
    assert proc.returncode != 0 and 'missing' in proc.stderr and 'Traceback' not in proc.stderr


@pytest.mark.parametrize('tool',
                         ['mpg_sam2_to_mmrvos.py', 'official_manifest.py', 'official_parity.py'])
def test_project_tools_answer_help(tool):
    proc = run([osp.join(PROJECT, 'tools', tool), '--help'])
    assert proc.returncode == 0 and proc.stdout.startswith('usage:'), proc.stderr


def test_official_parity_refuses_bad_arguments(tmp_path):
    """Without a checkout of the official repository (the comparison itself needs one and
    ~12 GB; its numbers are in the project README) the tool says what is wrong, no traceback."""
    tool = osp.join(PROJECT, 'tools', 'official_parity.py')
    proc = run([tool, '--official-repo', str(tmp_path), '--frames', str(tmp_path)])
    assert proc.returncode == 2 and 'not a checkout of rongfu-dsb/MPG-SAM2' in proc.stderr
    assert 'Traceback' not in proc.stderr
    (tmp_path / 'models').mkdir()
    (tmp_path / 'models' / 'evf_sam.py').write_text('')
    proc = run([tool, '--official-repo', str(tmp_path), '--frames', str(tmp_path / 'none')])
    assert proc.returncode == 2 and 'none: not a folder' in proc.stderr


@pytest.mark.parametrize('name,frames,chunk', [
    ('mpg_sam2_beit3-l_sam2-hiera-l_8xb1-6e_ref-ytvos.py', 5, None),
    ('mpg_sam2_beit3-l_sam2-hiera-l_8xb1-6e_mevis.py', 8, 24),
    ('mpg_sam2_beit3-l_sam2-hiera-l_8xb1-6e_ref-davis.py', 5, None),
])
def test_full_size_configs(name, frames, chunk, model_state):
    """The official recipe's numbers are in the configs, and each builds the same model."""
    from mmrvos.apis.config import load_config
    cfg = load_config(osp.join(PROJECT, 'configs', name))
    assert cfg.train_dataloader.dataset.pipeline[0].num_frames == frames
    assert cfg.train_dataloader.batch_size == 1
    assert cfg.model.test_cfg.chunk_size == chunk
    assert cfg.optim_wrapper.optimizer.lr == 2e-6
    assert cfg.optim_wrapper.clip_grad.max_norm == 0.1
    resize = [t for t in cfg.test_dataloader.dataset.pipeline[1].transforms if t.type == 'Resize']
    assert resize[0].scale == (1024, 1024) and resize[0].keep_ratio is False
    state = ckpt().build_on_meta(cfg.model).state_dict()
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in model_state.items()}

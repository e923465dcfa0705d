"""Key rules between the official MPG-SAM 2 checkpoints (``EvfSamModel``: Meta SAM 2 names
under ``visual_model.``, torchscale BEiT-3 under ``mm_extractor.beit3.``) and :class:`MPGSAM2`
(transformers SAM 2 names under ``sam2.``, BEiT-3 under ``multimodal_encoder.``), and loaders
for the official release layout (a Hugging Face folder, a single file, sharded or not).

The Meta -> transformers SAM 2 renaming is the one of transformers' own SAM 2 video
conversion (``convert_sam2_video_to_hf.py``), restated as data; the MPG-specific modules are
mapped by explicit prefixes (the generic substring rules would rename their ``out_proj`` and
``.norm``)."""
import json
import os.path as osp
import re
from collections import OrderedDict
from typing import Callable, Dict, List, Tuple

import torch
from torch import Tensor

from mmrvos.checkpoint_conversion import CheckpointConversionError, extract_state_dict

#: official top-level prefix -> ours (MPG modules outside SAM 2 and BEiT-3)
MPG_PREFIXES: List[Tuple[str, str]] = [
    ('mm_extractor.beit3.', 'multimodal_encoder.'),
    ('visual_ifi.', 'mask_prior_generator.video_self_attn.'),
    ('vmtoken.multihead_attn.', 'mask_prior_generator.class_token_attn.attn.'),
    ('mask_linear.', 'mask_prior_generator.class_proj.'),
    ('mask_product.', 'mask_prior_generator.prior_head.'),
    ('meo_linear.', 'mask_prior_generator.global_proj.'),
    ('text_hidden_fcs.0.', 'sparse_prompt_mlp.'),
    ('text_feat_linear.', 'text_proj.'),
    ('text2one_linear.', 'sentence_score.'),
    ('visual_model.sam_mask_decoder.vtlfusion_module.multihead_attn.',
     'sam2.mask_decoder.aggregator.pixel_global_fusion.attn.'),
    ('visual_model.sam_mask_decoder.vtlfusion_module.',
     'sam2.mask_decoder.aggregator.pixel_global_fusion.'),
    ('visual_model.sam_mask_decoder.mmfusion_module.multihead_attn.',
     'sam2.mask_decoder.aggregator.object_global_fusion.attn.'),
    ('visual_model.sam_mask_decoder.mmfusion_module.',
     'sam2.mask_decoder.aggregator.object_global_fusion.'),
    ('visual_model.sam_mask_decoder.objfusion_module.multihead_attn.',
     'sam2.mask_decoder.aggregator.object_history_fusion.attn.'),
    ('visual_model.sam_mask_decoder.objfusion_module.',
     'sam2.mask_decoder.aggregator.object_history_fusion.'),
    ('visual_model.sam_mask_decoder.patch_linear.',
     'sam2.mask_decoder.aggregator.global_patch_proj.'),
]

#: Meta SAM 2 -> transformers SAM 2: substring replacements, applied in this order
SAM2_SUBSTRINGS: List[Tuple[str, str]] = [
    ('iou_prediction_head.layers.0', 'iou_prediction_head.proj_in'),
    ('iou_prediction_head.layers.1', 'iou_prediction_head.layers.0'),
    ('iou_prediction_head.layers.2', 'iou_prediction_head.proj_out'),
    ('mask_decoder.output_upscaling.0', 'mask_decoder.upscale_conv1'),
    ('mask_decoder.output_upscaling.1', 'mask_decoder.upscale_layer_norm'),
    ('mask_decoder.output_upscaling.3', 'mask_decoder.upscale_conv2'),
    ('mask_downscaling.0', 'mask_embed.conv1'),
    ('mask_downscaling.1', 'mask_embed.layer_norm1'),
    ('mask_downscaling.3', 'mask_embed.conv2'),
    ('mask_downscaling.4', 'mask_embed.layer_norm2'),
    ('mask_downscaling.6', 'mask_embed.conv3'),
    ('dwconv', 'depthwise_conv'),
    ('pwconv', 'pointwise_conv'),
    ('fuser', 'memory_fuser'),
    ('point_embeddings', 'point_embed'),
    ('pe_layer.positional_encoding_gaussian_matrix', 'shared_embedding.positional_embedding'),
    ('obj_ptr_tpos_proj', 'temporal_positional_encoding_projection_layer'),
    ('no_obj_embed_spatial', 'occlusion_spatial_embedding_parameter'),
    ('sam_prompt_encoder', 'prompt_encoder'),
    ('sam_mask_decoder', 'mask_decoder'),
    ('maskmem_tpos_enc', 'memory_temporal_positional_encoding'),
    ('gamma', 'scale'),
    ('image_encoder.neck', 'vision_encoder.neck'),
    ('image_encoder', 'vision_encoder.backbone'),
    ('neck.0', 'neck.conv1'),
    ('neck.1', 'neck.layer_norm1'),
    ('neck.2', 'neck.conv2'),
    ('neck.3', 'neck.layer_norm2'),
    ('pix_feat_proj', 'feature_projection'),
    ('patch_embed.proj', 'patch_embed.projection'),
    ('no_mem_embed', 'no_memory_embedding'),
    ('no_mem_pos_enc', 'no_memory_positional_encoding'),
    ('obj_ptr', 'object_pointer'),
    ('.norm', '.layer_norm'),
    ('trunk.', ''),
    ('out_proj', 'o_proj'),
]
_THREE_LAYER = {'0': 'proj_in', '1': 'layers.0', '2': 'proj_out'}
#: (pattern on the renamed key, layer group, {index: new name})
SAM2_LAYER_RULES: List[Tuple[str, Dict[str, str]]] = [
    (r'(vision_encoder\.backbone\.blocks\.\d+\.mlp\.)layers\.(\d)\.', {
        '0': 'proj_in',
        '1': 'proj_out'
    }),
    (r'(mask_decoder\.transformer\.layers\.\d+\.mlp\.)layers\.(\d)\.', {
        '0': 'proj_in',
        '1': 'proj_out'
    }),
    (r'(mask_decoder\.pred_obj_score_head\.)layers\.(\d)\.', _THREE_LAYER),
    (r'(mask_decoder\.output_hypernetworks_mlps\.\d+\.)layers\.(\d)\.', _THREE_LAYER),
    (r'(object_pointer_proj\.)layers\.(\d)\.', _THREE_LAYER),
]
POINT_EMBED = 'prompt_encoder.point_embed.weight'
TIED_PE = ('prompt_encoder.shared_embedding.positional_embedding',
           'shared_image_embedding.positional_embedding')


def sam2_key_to_hf(key: str) -> str:
    """A Meta SAM 2 state-dict key (no prefix) -> transformers' ``Sam2VideoModel`` key. The
    four ``point_embeddings.i`` keys map to ``point_embed.i`` (concatenated by the caller)."""
    for old, new in SAM2_SUBSTRINGS:
        key = key.replace(old, new)
    for pattern, names in SAM2_LAYER_RULES:
        m = re.match(pattern, key)
        if m and m.group(2) in names:
            key = key.replace(f'{m.group(1)}layers.{m.group(2)}.',
                              f'{m.group(1)}{names[m.group(2)]}.', 1)
    key = re.sub(r'^(vision_encoder\.neck\.convs\.\d+)\.conv\.', r'\1.', key)
    key = re.sub(r'^memory_encoder\.o_proj\.', 'memory_encoder.projection.', key)
    m = re.match(r'^memory_encoder\.mask_downsampler\.encoder\.(\d+)\.', key)
    if m:
        n = int(m.group(1))
        new = 'final_conv' if n == 12 else f'layers.{n // 3}.' + ('conv' if n %
                                                                  3 == 0 else 'layer_norm')
        key = key.replace(f'encoder.{n}.', f'{new}.', 1)
    return key


def sam2_state_to_hf(state: Dict[str, Tensor], prefix: str = '') -> Dict[str, Tensor]:
    """A Meta SAM 2 state dict (keys without ``visual_model.``) -> transformers' names under
    ``prefix``: point embeddings concatenated, the tied positional buffer listed twice."""
    out: Dict[str, Tensor] = OrderedDict()
    points = {}
    for key, value in state.items():
        new = sam2_key_to_hf(key)
        m = re.fullmatch(r'prompt_encoder\.point_embed\.(\d)\.weight', new)
        if m:
            points[int(m.group(1))] = value
            continue
        out[prefix + new] = value
    if points:
        if sorted(points) != list(range(len(points))):
            raise CheckpointConversionError(f'SAM 2 point embeddings incomplete: {sorted(points)}')
        out[prefix + POINT_EMBED] = torch.cat([points[i] for i in sorted(points)])
    if prefix + TIED_PE[0] in out:
        out[prefix + TIED_PE[1]] = out[prefix + TIED_PE[0]]
    return out


def official_to_mmrvos(state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """An official MPG-SAM 2 state dict (``EvfSamModel``) -> :class:`MPGSAM2`'s.

    Raises:
        CheckpointConversionError: a key that belongs to no known module.
    """
    out: Dict[str, Tensor] = OrderedDict()
    sam2: Dict[str, Tensor] = OrderedDict()
    unknown = []
    for key, value in state.items():
        for old, new in MPG_PREFIXES:
            if key.startswith(old):
                out[new + key[len(old):]] = value
                break
        else:
            if key.startswith('visual_model.'):
                sam2[key[len('visual_model.'):]] = value
            else:
                unknown.append(key)
    if unknown:
        raise CheckpointConversionError(
            f'{len(unknown)} key(s) of no MPG-SAM 2 module, e.g. {unknown[:5]} (is this an '
            'MPG-SAM 2 / EVF-SAM 2 checkpoint?)')
    out.update(sam2_state_to_hf(sam2, prefix='sam2.'))
    return out


def detect_kind(state: Dict[str, Tensor]) -> str:
    """``'mpg_sam2'`` (official release), ``'sam2'`` (Meta ``sam2_hiera_*.pt``), ``'beit3'``
    (``beit3_*.pth``) or ``'mmrvos'``."""
    keys = list(state)
    if any(k.startswith('visual_model.') for k in keys) and \
            any(k.startswith('mm_extractor.beit3.') for k in keys):
        return 'mpg_sam2'
    if any(k.startswith('sam2.') for k in keys) and \
            any(k.startswith('multimodal_encoder.') for k in keys):
        return 'mmrvos'
    if any(k.startswith('image_encoder.trunk.') for k in keys):
        return 'sam2'
    if any(k.startswith('beit3.') for k in keys):
        return 'beit3'
    raise CheckpointConversionError(
        f'not an MPG-SAM 2, SAM 2 or BEiT-3 checkpoint (keys e.g. {keys[:5]})')


def convert_any(state: Dict[str, Tensor]) -> Tuple[Dict[str, Tensor], str]:
    """Any of the layouts of :func:`detect_kind` -> :class:`MPGSAM2` keys (a SAM 2 or BEiT-3
    file gives only that part: an initialisation), and the detected kind."""
    state = strip_release_prefix(state)
    kind = detect_kind(state)
    if kind == 'mpg_sam2':
        return official_to_mmrvos(state), kind
    if kind == 'sam2':
        return sam2_state_to_hf(state, prefix='sam2.'), kind
    if kind == 'beit3':
        return OrderedDict(('multimodal_encoder.' + k[len('beit3.'):], v) for k, v in state.items()
                           if k.startswith('beit3.')), kind
    return OrderedDict(state), kind


def strip_release_prefix(state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Drop the ``module.evf_model.`` / ``evf_model.`` prefix of a DeepSpeed / wrapper save."""
    for prefix in ('module.evf_model.', 'evf_model.', 'module.'):
        if state and all(k.startswith(prefix) for k in state):
            return OrderedDict((k[len(prefix):], v) for k, v in state.items())
    return state


def load_release(path: str, file_loader: Callable[[str], object] = None) -> Dict[str, Tensor]:
    """The state dict of an official release: a Hugging Face folder (``model.safetensors``,
    ``pytorch_model.bin`` or their sharded ``*.index.json``) or one file (``.safetensors`` or a
    torch file, loaded with ``weights_only=True``: no pickled code runs).

    Raises:
        FileNotFoundError: nothing to load at ``path``. UnsafeCheckpointError: a torch file
            that pickles objects outside the allow-list.
    """
    if file_loader is None:
        from mmrvos.engine.checkpoint import load_checkpoint_file

        def file_loader(p):
            return load_checkpoint_file(p, map_location='cpu')

    def load_one(p: str) -> Dict[str, Tensor]:
        if p.endswith('.safetensors'):
            from safetensors.torch import load_file
            return OrderedDict(load_file(p))
        return extract_state_dict(file_loader(p), p)

    if osp.isdir(path):
        for index in ('model.safetensors.index.json', 'pytorch_model.bin.index.json'):
            if osp.isfile(osp.join(path, index)):
                with open(osp.join(path, index)) as f:
                    shards = sorted(set(json.load(f)['weight_map'].values()))
                state = OrderedDict()
                for shard in shards:
                    state.update(load_one(osp.join(path, shard)))
                return state
        for name in ('model.safetensors', 'pytorch_model.bin'):
            if osp.isfile(osp.join(path, name)):
                return load_one(osp.join(path, name))
        raise FileNotFoundError(f'{path}: no model.safetensors, pytorch_model.bin or shard index '
                                'in this folder')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist')
    return load_one(path)


def build_on_meta(model_cfg: dict) -> torch.nn.Module:
    """Build a model config on the ``meta`` device (shapes only, no memory): enough to check
    a converted checkpoint against the full-size config. ``torch.linspace`` stays on the CPU
    (Hiera reads its drop-path rates with ``.item()``)."""
    from mmdet.registry import MODELS
    linspace = torch.linspace
    torch.linspace = lambda *a, **k: linspace(*a, **{**k, 'device': 'cpu'})
    try:
        with torch.device('meta'):
            return MODELS.build(model_cfg)
    finally:
        torch.linspace = linspace

"""Helpers shared by the converter / merge / publish tests: tiny ReferDINO with LoRA, clips."""
import copy
import importlib.util
import os.path as osp
import sys

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.config import Config

from rvos_test_utils import REPO_ROOT, TINY_CONFIG

TINY_LORA = dict(
    targets=['encoder', 'decoder'],
    rank=4,
    alpha=1.0,
    exclude=['out_proj', 'bbox_embed', 'reg_branches'])

_BUILT = {}


def tiny_config(lora=TINY_LORA):
    """Tiny ReferDINO config in the official layout: LoRA (rank 4, alpha 1 -> scaling 1/4)
    or none, the official parameter-free contrastive class head and the official temporal
    enhancer (the tiny config's trajectory embedding and gate have no official counterpart)."""
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.model.lora = copy.deepcopy(lora)
    cfg.model.bbox_head.contrastive_cfg = dict(max_text_len=256)
    cfg.model.temporal_enhancer.tracker.box_weight = 0.0
    cfg.model.temporal_enhancer.temporal_decoder.update(motion_embed=False, zero_init_gate=False)
    return cfg


def build_tiny(lora=TINY_LORA, seed=0):
    """A fresh tiny ReferDINO, built once per LoRA setting and then deep-copied (building is
    slow; tests overwrite the weights or :func:`randomize` them with their own seed)."""
    key = repr(lora)
    if key not in _BUILT:
        torch.manual_seed(seed)
        model = MODELS.build(tiny_config(lora).model)
        model.init_weights()
        _BUILT[key] = model.eval()
    return copy.deepcopy(_BUILT[key])


@torch.no_grad()
def randomize(model, seed=1, share_box_mlp=True):
    """Perturb every parameter (LoRA B becomes non-zero, norms stop being 1/0) so that any
    swapped or dropped tensor changes the outputs. With ``share_box_mlp`` the decoder layers'
    box MLPs are tied, as in the official model (one MLP shared by all decoder layers)."""
    gen = torch.Generator().manual_seed(seed)
    for name, param in model.named_parameters():
        scale = 0.2 if 'lora_B' in name else 0.05
        param.add_(torch.randn(param.shape, generator=gen) * scale)
    if share_box_mlp:
        branches = model.bbox_head.reg_branches
        for lid in range(1, model.decoder.num_layers):
            branches[lid].load_state_dict(branches[0].state_dict())
    return model


def make_clip(t=2, h=32, w=64, text='the red circle on the left'):
    """A TrackDataSample with ``t`` frames (no annotations needed for inference)."""
    clip = TrackDataSample()
    clip.video_data_samples = [
        DetDataSample(
            metainfo=dict(
                img_shape=(h, w),
                ori_shape=(h, w),
                pad_shape=(h, w),
                batch_input_shape=(h, w),
                frame_index=i)) for i in range(t)
    ]
    clip.set_metainfo(dict(text=text))
    return clip


@torch.no_grad()
def outputs(model, inputs, clip):
    """All prediction sets of :meth:`ReferDINO.forward_clips` (cls, boxes, masks per layer)."""
    model.eval()
    outs = model.forward_clips(inputs, [clip], with_enc=True)
    return [{k: v for k, v in o.items() if torch.is_tensor(v)} for o in outs]


def assert_outputs_equal(a, b, exact=True):
    assert len(a) == len(b)
    for oa, ob in zip(a, b):
        assert oa.keys() == ob.keys()
        for k in oa:
            if exact:
                assert torch.equal(oa[k], ob[k]), k
            else:
                torch.testing.assert_close(oa[k], ob[k], rtol=1e-4, atol=1e-4)


TOOLS = osp.join(REPO_ROOT, 'tools', 'model_converters')


def load_tool(name):
    """Import ``tools/model_converters/<name>.py`` (its ``main(argv)`` is the CLI)."""
    if TOOLS not in sys.path:
        sys.path.insert(0, TOOLS)
    spec = importlib.util.spec_from_file_location(f'_tool_{name}', osp.join(TOOLS, name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

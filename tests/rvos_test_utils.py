"""Shared test constants and helpers: repository paths, the real fixture, the tiny BERT,
loading a command-line script as a module."""
import importlib.util
import os.path as osp

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_BERT = osp.join(REPO_ROOT, 'tests', 'data', 'tiny_bert')
# The real DAVIS `judo` fixture lives beside the repository (never copied into it).
JUDO = osp.normpath(osp.join(REPO_ROOT, '..', 'shared', 'fixtures', 'davis-judo'))
TINY_CONFIG = osp.join(REPO_ROOT, 'configs', '_base_', 'models', 'referdino_tiny.py')

# a tiny SAM 2 (random weights, ~1.4 M parameters; the hidden size must be a multiple of 64,
# the memory encoder's output 64, a global-attention block must not start a stage)
TINY_SAM2 = dict(
    vision_config=dict(
        backbone_config=dict(
            hidden_size=16,
            num_attention_heads=1,
            image_size=[64, 64],
            blocks_per_stage=[1, 1, 2, 1],
            embed_dim_per_stage=[16, 32, 64, 128],
            num_attention_heads_per_stage=[1, 1, 2, 2],
            window_size_per_stage=[4, 2, 2, 2],
            global_attention_blocks=[3],
            window_positional_embedding_background_size=[2, 2]),
        backbone_channel_list=[128, 64, 32, 16],
        backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]],
        fpn_hidden_size=128),
    prompt_encoder_config=dict(
        hidden_size=128, image_size=64, patch_size=16, mask_input_channels=8),
    mask_decoder_config=dict(
        hidden_size=128,
        mlp_dim=256,
        num_attention_heads=2,
        iou_head_hidden_dim=64,
        dynamic_multimask_via_stability=False),
    image_size=64,
    memory_attention_hidden_size=128,
    memory_attention_num_layers=1,
    memory_attention_feed_forward_hidden_size=256,
    memory_attention_rope_feat_sizes=[4, 4],
    memory_encoder_hidden_size=128,
    memory_encoder_output_channels=64,
    mask_downsampler_embed_dim=128,
    memory_fuser_num_layers=1,
    memory_fuser_embed_dim=128,
    memory_fuser_intermediate_dim=256,
    num_maskmem=3)


def load_script(rel_path: str):
    """Import a script of the repository (e.g. ``tools/misc/run_demo.py``) as a fresh module."""
    name = 'mmrvos_script_' + rel_path.replace('/', '_').replace('.', '_')
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO_ROOT, rel_path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

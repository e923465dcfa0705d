"""Trainable SAM 2 tracking on transformers' ``Sam2VideoModel``: its ``forward`` runs in
inference mode, so training loops (MPG-SAM 2, the toy SAM 2 of the refiner) call its parts
frame by frame and keep the memory in a plain state object.

Shapes: T frames, C channels, (h, w) feature sizes.
"""
from types import SimpleNamespace
from typing import List, Tuple

import torch
from torch import Tensor


def sam2_frame_features(model,
                        frames: Tensor,
                        train_encoder: bool = True) -> Tuple[List[Tensor], List[Tensor]]:
    """SAM 2 features of T frames in one batch (what ``Sam2VideoModel.get_image_features``
    returns, with gradients).

    Args:
        model: a ``Sam2VideoModel``.
        frames (Tensor): (T, 3, S, S) normalised RGB.
        train_encoder (bool): gradients through the Hiera encoder and FPN; the mask
            decoder's ``conv_s0/conv_s1`` projections always get them.

    Returns:
        tuple: per FPN level (finest first) features (h*w, T, C_l) and positions (h*w, T, C).
    """
    with torch.set_grad_enabled(torch.is_grad_enabled() and train_encoder):
        out = model.vision_encoder(frames)
    feats = list(out.fpn_hidden_states)
    feats[0] = model.mask_decoder.conv_s0(feats[0])
    feats[1] = model.mask_decoder.conv_s1(feats[1])
    return ([f.flatten(2).permute(2, 0, 1)
             for f in feats], [p.flatten(2).permute(2, 0, 1) for p in out.fpn_position_encoding])


def frame_slice(model, feats: List[Tensor], t: int) -> Tuple[List[Tensor], List[Tensor]]:
    """Frame t's levels (h*w, 1, C_l) and its fine levels as maps (1, C_l, h, w) (SAM 2's
    high-resolution features)."""
    cur = [f[:, t:t + 1] for f in feats]
    sizes = model.backbone_feature_sizes
    high_res = [
        f.permute(1, 2, 0).reshape(1, f.shape[-1], *s) for f, s in zip(cur[:-1], sizes[:-1])
    ]
    return cur, high_res


def new_track_state() -> SimpleNamespace:
    """The memory of one tracked object, in the layout SAM 2's memory helpers read
    (``_prepare_memory_conditioned_features``, ``_get_object_pointers``)."""
    return SimpleNamespace(
        output_dict_per_obj={0: dict(cond_frame_outputs={}, non_cond_frame_outputs={})})


def remember(state, t: int, conditioning: bool, object_pointer: Tensor, memory: Tensor,
             memory_pos: Tensor) -> None:
    """Store frame t's object pointer and memory features (frame t a conditioning frame or
    a tracked one)."""
    bank = 'cond_frame_outputs' if conditioning else 'non_cond_frame_outputs'
    state.output_dict_per_obj[0][bank][t] = dict(
        object_pointer=object_pointer, maskmem_features=memory, maskmem_pos_enc=memory_pos)

"""SAM 2 (transformers' ``Sam2VideoModel``) driven by MPG-SAM 2's prompts: the mask prior as
dense prompt, the sentence as sparse prompt, and the global-historical aggregator inside the
mask decoder. Trainable: its own per-frame loop (``Sam2VideoModel.forward`` runs in inference
mode) over SAM 2's memory attention, memory encoder and object pointers."""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor
from transformers import Sam2VideoConfig, Sam2VideoModel
from transformers.models.sam2_video.modeling_sam2_video import (NO_OBJ_SCORE, Sam2VideoMaskDecoder,
                                                                get_1d_sine_pe)

from mmrvos.models.utils import frame_slice, new_track_state, remember, sam2_frame_features
from mmrvos.models.utils.sam2_attention import use_lean_sam2_attention
from .aggregator import GlobalHistoricalAggregator


class MPGSam2MaskDecoder(Sam2VideoMaskDecoder):
    """SAM 2's mask decoder with the aggregator: the image embedding reads the global tokens
    before the dense prompt is added (pixel level); the mask tokens read the global video
    feature and the object pointers before the two-way transformer (object level). Every
    SAM 2 parameter keeps its transformers name; the aggregator's are under
    ``aggregator.``."""

    def __init__(self, config, aggregator: dict) -> None:
        super().__init__(config)
        self.aggregator = GlobalHistoricalAggregator(embed_dims=config.hidden_size, **aggregator)

    def forward(self,
                image_embeddings: Tensor,
                image_positional_embeddings: Tensor,
                sparse_prompt_embeddings: Tensor,
                dense_prompt_embeddings: Tensor,
                multimask_output: bool,
                high_resolution_features: List[Tensor],
                global_tokens: Optional[Tensor] = None,
                global_feat: Optional[Tensor] = None,
                pointers: Optional[Tensor] = None,
                pointer_pos: Optional[Tensor] = None,
                **kwargs) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """One frame (batch B = 1 object).

        Args:
            image_embeddings (Tensor): (B, C, s, s) memory-conditioned pixel features.
            image_positional_embeddings (Tensor): (B, C, s, s).
            sparse_prompt_embeddings (Tensor): (B, 1, P, C). dense_prompt_embeddings (Tensor):
                (B, C, s, s).
            multimask_output (bool): the 3 multimask outputs instead of the single one.
            high_resolution_features (list[Tensor]): (B, C/8, 4s, 4s), (B, C/4, 2s, 2s).
            global_tokens (Tensor): (Nk, B, C) V_u (:meth:`GlobalHistoricalAggregator.
                global_tokens`). global_feat (Tensor): (B, T*g*g, C) V_g.
            pointers, pointer_pos (Tensor, optional): (P, B, C) object pointers and positions.

        Returns:
            tuple: masks (B, 1, M, 4s, 4s) logits, IoU predictions (B, 1, M), mask tokens
            (B, 1, M, C), object score logits (B, 1, 1).
        """
        if global_tokens is None or global_feat is None:
            raise ValueError('MPGSam2MaskDecoder needs global_tokens and global_feat')
        agg = self.aggregator
        batch_size, num_channels, height, width = image_embeddings.shape
        image_embeddings = agg.fuse_pixels(image_embeddings, image_positional_embeddings,
                                           global_tokens)
        mask_tokens = agg.fuse_mask_tokens(self.mask_tokens.weight[None].expand(batch_size, -1, -1),
                                           global_feat, pointers, pointer_pos)
        fixed = torch.cat([self.obj_score_token.weight, self.iou_token.weight])
        tokens = torch.cat([fixed[None].expand(batch_size, -1, -1), mask_tokens], dim=1)[:, None]
        tokens = torch.cat([tokens, sparse_prompt_embeddings.to(tokens.dtype)], dim=2)
        point_out, image_out = self.transformer(
            point_embeddings=tokens,
            image_embeddings=image_embeddings + dense_prompt_embeddings,
            image_positional_embeddings=image_positional_embeddings,
            attention_similarity=None)
        iou_token_out = point_out[:, :, 1]
        mask_tokens_out = point_out[:, :, 2:2 + self.num_mask_tokens]

        image_out = image_out.transpose(2, 3).reshape(batch_size, num_channels, height, width)
        feat_s0, feat_s1 = high_resolution_features
        up = self.activation(self.upscale_layer_norm(self.upscale_conv1(image_out) + feat_s1))
        up = self.activation(self.upscale_conv2(up) + feat_s0)
        hyper = torch.stack(
            [mlp(mask_tokens_out[:, :, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
            dim=2)
        masks = (hyper @ up.flatten(2)[:, None]).view(batch_size, 1, -1, *up.shape[-2:])
        iou_pred = self.iou_prediction_head(iou_token_out)
        object_score_logits = self.pred_obj_score_head(point_out[:, :, 0])
        keep = slice(1, None) if multimask_output else slice(0, 1)
        return (masks[:, :, keep], iou_pred[:, :, keep], mask_tokens_out[:, :,
                                                                         keep], object_score_logits)


@MODELS.register_module()
class MPGSam2Tracker(Sam2VideoModel):
    """transformers' ``Sam2VideoModel`` whose mask decoder is :class:`MPGSam2MaskDecoder`.

    Args:
        config (dict | Sam2VideoConfig): SAM 2's configuration (``Sam2VideoConfig`` keywords).
        aggregator (dict): :class:`GlobalHistoricalAggregator` keywords besides ``embed_dims``.
        freeze_image_encoder (bool): no gradient to the Hiera image encoder (the official
            recipe). The FPN projections ``mask_decoder.conv_s0/conv_s1`` still train.
    """

    def __init__(self,
                 config,
                 aggregator: Optional[dict] = None,
                 freeze_image_encoder: bool = True) -> None:
        if isinstance(config, dict):
            config = Sam2VideoConfig(**config)
        super().__init__(config)
        config.mask_decoder_config._attn_implementation = config._attn_implementation
        self.mask_decoder = MPGSam2MaskDecoder(config.mask_decoder_config, aggregator or {})
        self.mask_decoder.apply(self._init_weights)
        use_lean_sam2_attention(self)  # Hiera without transformers' discarded attention map
        self.freeze_image_encoder = freeze_image_encoder
        if freeze_image_encoder:
            self.vision_encoder.requires_grad_(False)

    def init_weights(self) -> None:
        """Kept as built: mmengine calls ``init_weights`` on children, and transformers'
        version would re-draw the weights already initialised in ``__init__``."""

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_image_encoder:
            self.vision_encoder.eval()
        return self

    # ------------------------------------------------------------------ features
    def encode_frames(self, frames: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
        """(T, 3, S, S) -> FPN levels (h*w, T, C_l) and positions (h*w, T, C); no gradient
        to the image encoder when it is frozen."""
        return sam2_frame_features(self, frames, not self.freeze_image_encoder)

    def _pointer_history(self, state, t: int,
                         num_frames: int) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """(P, 1, C) object pointers SAM 2's memory attention would use at frame t, and
        their keys' positions: sine encoding of the frame distance / (max pointers - 1)."""
        if t == 0:
            return None, None
        offsets, tokens, max_ptrs = self._get_object_pointers(state, 0, t, num_frames,
                                                              self.no_memory_embedding.device)
        if not tokens:
            return None, None
        pointers = torch.stack(tokens)  # (P, 1, C)
        dist = torch.tensor(offsets, dtype=torch.float32, device=pointers.device).abs()
        pos = get_1d_sine_pe(dist / max(max_ptrs - 1, 1), pointers.shape[-1])
        return pointers, pos[:, None].to(pointers.dtype)

    # ------------------------------------------------------------------ tracking
    def track(self, frames: Tensor, sparse_tokens: Tensor, mask_prior: Tensor, global_feat: Tensor,
              text_feats: Tensor) -> Dict[str, Tensor]:
        """Segment one object through a clip, frame by frame (frame 0 is the conditioning
        frame; the others read SAM 2's memory of the earlier frames).

        Args:
            frames (Tensor): (T, 3, S, S) normalised RGB.
            sparse_tokens (Tensor): (T, C) per-frame sentence token (sparse prompt).
            mask_prior (Tensor): (T, 1, g, g) mask prior probabilities (dense prompt).
            global_feat (Tensor): (1, T, g*g, C) V_g of the clip.
            text_feats (Tensor): (T, L, C) the sentence's tokens as encoded with each frame
                (frame t's join V_g in the pixel-level memory of frame t).

        Returns:
            dict: ``masks`` (T, S/4, S/4) logits of the chosen output (-1024 where the object
            score says "absent", as SAM 2), ``object_scores`` (T,) logits, ``iou`` (T,).
        """
        num = len(frames)
        feats, pos = self.encode_frames(frames)
        state = new_track_state()
        image_pe = self.get_image_wide_positional_embeddings()
        prior = F.interpolate(
            mask_prior.float(),
            size=self.prompt_encoder.mask_input_size,
            mode='bilinear',
            align_corners=False,
            antialias=True)
        points = frames.new_zeros(1, 1, 1, 2)
        labels = -torch.ones(1, 1, 1, dtype=torch.int32, device=frames.device)
        agg = self.mask_decoder.aggregator
        global_flat = global_feat.flatten(1, 2)
        masks, scores, ious = [], [], []
        for t in range(num):
            cur, high_res = frame_slice(self, feats, t)
            pix = self._prepare_memory_conditioned_features(state, t, 0, t == 0, cur[-1],
                                                            pos[-1][:, t:t + 1], num)
            sparse, dense = self.prompt_encoder(points, labels, None, prior[t:t + 1])
            sparse = torch.cat([sparse, sparse_tokens[t].view(1, 1, 1, -1).to(sparse.dtype)], 2)
            pointers, pointer_pos = self._pointer_history(state, t, num)
            multimask = self._use_multimask(t == 0, None)
            low, iou, tokens, obj = self.mask_decoder(
                pix,
                image_pe,
                sparse,
                dense,
                multimask,
                high_res,
                global_tokens=agg.global_tokens(global_feat, text_feats[t][None]),
                global_feat=global_flat,
                pointers=pointers,
                pointer_pos=pointer_pos)
            appearing = obj[..., None, None] > 0  # (1, 1, 1, 1, 1)
            low = torch.where(appearing, low, torch.full_like(low, NO_OBJ_SCORE))
            best = int(iou[0, 0].argmax()) if multimask else 0
            low_best = low[:, 0, best]  # (1, 4s, 4s)
            token = tokens[:, 0, best if tokens.shape[2] > 1 else 0]
            pointer = self.object_pointer_proj(token)
            present = (obj[:, 0] > 0).to(pointer.dtype)
            pointer = present * pointer + (1 - present) * self.no_object_pointer
            high = F.interpolate(
                low_best[:, None].float(),
                size=(self.image_size, ) * 2,
                mode='bilinear',
                align_corners=False)
            mem, mem_pos = self._encode_new_memory(cur[-1], high, obj, False)
            remember(state, t, t == 0, pointer, mem, mem_pos)
            masks.append(low_best[0])
            scores.append(obj.reshape(()))
            ious.append(iou[0, 0, best])
        return dict(
            masks=torch.stack(masks), object_scores=torch.stack(scores), iou=torch.stack(ious))

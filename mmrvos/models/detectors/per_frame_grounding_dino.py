"""Grounding DINO on a batch of frames, each with its referring expression: the per-frame
stage of ReferDINO (and of its G-DINO baselines)."""
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmdet.models.detectors import GroundingDINO
from mmdet.registry import MODELS
from torch import Tensor

from ..layers.pruning_decoder import PruningDecoderMixin
from ..utils import (TEXT_KEYS, mask_padding_and_ratio, referring_captions, split_levels,
                     warn_truncated_captions)


class PerFrameGroundingDINO(PruningDecoderMixin, GroundingDINO):
    """The per-frame stage of ReferDINO: text encoding, backbone + neck, image-text encoder,
    pixel decoder (F_seg at stride 4), two-stage query selection without denoising queries and
    the confidence-aware :class:`PruningGroundingDinoDecoder`. Shapes: B frames (N clips x T
    frames), L tokens, C channels, Q queries.

    Not registered: it has no clip-level loss or prediction; :class:`ReferDINO` adds them.

    Args:
        pixel_decoder (dict): :class:`RVOSPixelDecoder` config.
        **kwargs: ``GroundingDINO`` arguments. ``decoder`` accepts ``drop_rate`` and
            ``prune_mode``. The backbone must output 4 levels (stride 4 first); the neck takes
            the last three.
    """

    def __init__(self, *args, pixel_decoder: dict, **kwargs) -> None:
        # DINO requires a denoising generator; ReferDINO uses no denoising queries and
        # removes it after construction.
        kwargs.setdefault(
            'dn_cfg',
            dict(
                label_noise_scale=0.5,
                box_noise_scale=1.0,
                group_cfg=dict(dynamic=True, num_dn_queries=1)))
        super().__init__(*args, **kwargs)
        del self.dn_query_generator
        self.pixel_decoder = MODELS.build(pixel_decoder)

    # ------------------------------------------------------------------ text
    def encode_text(self, texts: Sequence[str]) -> Dict[str, Tensor]:
        """Encode one sentence per clip.

        A sentence longer than the text model's ``max_tokens`` is cut there (as Grounding
        DINO does) with a :class:`TextTruncatedWarning` that names it and its length.

        Returns:
            dict: ``embedded`` (N, L, C) mapped to the transformer width, ``masks`` (N, L, L)
            sub-sentence attention, ``position_ids`` (N, L), ``text_token_mask`` (N, L).
        """
        captions = referring_captions(texts)
        warn_truncated_captions(self.language_model, captions)
        text_dict = self.language_model(captions)
        text_dict['embedded'] = self.text_feat_map(text_dict['embedded'])
        return {k: v for k, v in text_dict.items() if k in TEXT_KEYS}

    # ------------------------------------------------------------------ frames
    def extract_frame_feats(self, frames: Tensor) -> Tuple[Tuple[Tensor], Tensor]:
        """Backbone + neck.

        Args:
            frames (Tensor): (B, 3, H, W).

        Returns:
            tuple: neck levels (each (B, C, H_l, W_l), strides 8..64) and the stride-4
            backbone feature (B, C_4, H/4, W/4).
        """
        x = self.backbone(frames)
        return self.neck(x[1:]), x[0]

    def pre_decoder(self,
                    memory: Tensor,
                    memory_mask: Tensor,
                    spatial_shapes: Tensor,
                    memory_text: Tensor,
                    text_token_mask: Tensor,
                    batch_data_samples=None) -> Tuple[Dict, Dict]:
        """Two-stage query selection without denoising queries.

        Returns:
            tuple: decoder inputs (``query`` (B, Q, C), ``reference_points`` (B, Q, 4),
            ``memory``, ``memory_text``, ``text_attention_mask``) and encoder-proposal outputs
            (``enc_cls`` (B, Q) logits, ``enc_boxes`` (B, Q, 4) refined, ``enc_anchors``
            (B, Q, 4) the unrefined proposals, ``enc_embed`` (B, Q, C)).
        """
        bsz = memory.shape[0]
        layer = self.decoder.num_layers
        output_memory, output_proposals = self.gen_encoder_output_proposals(
            memory, memory_mask, spatial_shapes)
        enc_logits = self.bbox_head.class_logits(layer, output_memory, memory_text, text_token_mask)
        enc_coord_unact = self.bbox_head.reg_branches[layer](output_memory) + output_proposals
        topk = self.select_proposals(enc_logits, min(self.num_queries, enc_logits.shape[1]))
        enc_cls = torch.gather(enc_logits, 1, topk)
        coords = torch.gather(enc_coord_unact, 1, topk[..., None].expand(-1, -1, 4))
        anchors = torch.gather(output_proposals, 1, topk[..., None].expand(-1, -1, 4))
        enc_embed = torch.gather(output_memory, 1,
                                 topk[..., None].expand(-1, -1, output_memory.shape[-1]))
        query = self.query_embedding.weight[None, :topk.shape[1]].expand(bsz, -1, -1)
        decoder_inputs = dict(
            query=query,
            memory=memory,
            reference_points=coords.detach().sigmoid(),
            memory_text=memory_text,
            text_attention_mask=~text_token_mask)
        enc_outputs = dict(
            enc_cls=enc_cls,
            enc_boxes=coords.sigmoid(),
            enc_anchors=anchors.sigmoid(),
            enc_embed=enc_embed)
        return decoder_inputs, enc_outputs

    def select_proposals(self, enc_logits: Tensor, k: int) -> Tensor:
        """Indices (B, k) of the encoder proposals that become the decoder's queries: the
        top-k class logits (B, S), best first. One place to override or hook (e.g.
        ``tools/analysis_tools/official_parity.py --force-topk-order``)."""
        return torch.topk(enc_logits, k=k, dim=1)[1]

    def encode_frames(self,
                      frames: Tensor,
                      frame_samples: list,
                      text_dict: Dict[str, Tensor],
                      feats: Optional[Tuple[Tuple[Tensor], Tensor]] = None) -> Dict:
        """Backbone, cross-modal encoder and pixel decoder of a batch of frames.

        Args:
            frames (Tensor): (B, 3, H, W). frame_samples (list[DetDataSample]): B samples.
            text_dict (dict): per-frame text (B leading).
            feats (tuple, optional): precomputed :meth:`extract_frame_feats` of ``frames``
                (the backbone does not depend on the text, so expressions share it).

        Returns:
            dict with encoder outputs, ``memory_text`` (B, L, C) fused text,
            ``text_token_mask`` (B, L), ``mask_feats`` (B, C, H/4, W/4), ``mask_padding``,
            ``valid_ratio`` (B, 2), and the decoder inputs.
        """
        feats, stride4 = feats if feats is not None else self.extract_frame_feats(frames)
        enc_in, dec_in = self.pre_transformer(feats, frame_samples)
        enc_out = self.forward_encoder(**enc_in, text_dict=text_dict)
        memory_levels = split_levels(enc_out['memory'], enc_out['spatial_shapes'])
        mask_feats = self.pixel_decoder(memory_levels, stride4)
        padding, ratio = mask_padding_and_ratio(frame_samples, mask_feats)
        return dict(
            enc_out=enc_out,
            dec_in=dec_in,
            memory_text=enc_out['memory_text'],
            text_token_mask=enc_out['text_token_mask'],
            mask_feats=mask_feats,
            mask_padding=padding,
            valid_ratio=ratio)

    def decode_frames(self, encoded: Dict) -> Dict:
        """Query selection + pruning decoder on encoded frames (see :meth:`encode_frames`).

        Returns:
            dict: decoder outputs (per-layer lists ``hidden_states`` (B, Q_l, C),
            ``references`` (B, Q_l, 4), ``query_indices``) and the encoder proposals.
        """
        dec_inputs, enc_outputs = self.pre_decoder(**encoded['enc_out'])
        dec_in = dict(encoded['dec_in'])
        dec_in.update(dec_inputs)
        out = self.decoder(
            query=dec_in['query'],
            value=dec_in['memory'],
            key_padding_mask=dec_in['memory_mask'],
            self_attn_mask=None,
            reference_points=dec_in['reference_points'],
            spatial_shapes=dec_in['spatial_shapes'],
            level_start_index=dec_in['level_start_index'],
            valid_ratios=dec_in['valid_ratios'],
            reg_branches=self.bbox_head.reg_branches,
            class_logits=self.bbox_head.class_logits,
            memory_text=dec_in['memory_text'],
            text_attention_mask=dec_in['text_attention_mask'])
        out.update(enc_outputs)
        return out

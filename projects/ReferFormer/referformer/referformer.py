"""ReferFormer (Wu et al., CVPR 2022): language as queries for RVOS, on mmdet's Deformable DETR."""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.detectors import DeformableDETR
from mmdet.registry import MODELS
from mmdet.structures import TrackDataSample
from mmengine.structures import InstanceData
from torch import Tensor

from mmrvos.models.detectors import BaseRVOSDetector
from mmrvos.models.utils import (clip_text, mask_padding_and_ratio, repeat_text, split_levels,
                                 to_clip_shape)
from .fusion import VisionLanguageFusion


@MODELS.register_module()
class ReferFormer(BaseRVOSDetector, DeformableDETR):
    """ReferFormer on mmdet's Deformable DETR.

    Per frame: backbone -> ChannelMapper (strides 8/16/32 + an extra stride-64 level) ->
    text-conditioned visual features (:class:`VisionLanguageFusion`, every level) ->
    deformable encoder -> deformable decoder whose ``num_queries`` (5) queries have the
    sentence feature as content and learnable position embeddings, **shared by all frames**
    (query ``i`` of every frame forms instance sequence ``i``; no tracking) -> per layer class,
    box (iterative refinement) and masks from the :class:`CrossModalFPN` map through the
    dynamic mask head (reference = the layer's predicted box centre, detached as in the
    official code). Trained with sequence matching; inference picks the sequence with the
    highest frame-averaged score (:class:`ReferFormerHead`, :class:`BaseRVOSHead`).

    Inputs are clips ``(N, T, 3, H, W)`` with N :class:`TrackDataSample` s (``.text``), see
    :class:`BaseRVOSDetector`.

    Args:
        text_encoder (dict): :class:`RobertaTextEncoder` config.
        cm_fpn (dict): :class:`CrossModalFPN` config (``in_channels[0]`` = stride-4 backbone
            channels).
        fusion_heads (int): heads of the early vision-language fusion.
        **kwargs: ``DeformableDETR`` arguments (``with_box_refine`` is forced on, two-stage
            off). ``test_cfg``: the head's (``select`` 'top1' | 'threshold' | 'all',
            ``score_thr``, ``mask_thr``, ``mask_rescale``; :class:`BaseRVOSHead`).
    """

    def __init__(self,
                 *args,
                 text_encoder: dict,
                 cm_fpn: dict,
                 fusion_heads: int = 8,
                 **kwargs) -> None:
        self._text_cfg, self._fpn_cfg, self._fusion_heads = text_encoder, cm_fpn, fusion_heads
        kwargs.update(with_box_refine=True, as_two_stage=False)
        super().__init__(*args, **kwargs)

    def _init_layers(self) -> None:
        super()._init_layers()
        # position-only query embeddings: the content is the sentence feature
        self.query_embedding = nn.Embedding(self.num_queries, self.embed_dims)
        self.text_encoder = MODELS.build(self._text_cfg)
        self.vl_fusion = VisionLanguageFusion(self.embed_dims, self._fusion_heads)
        self.cm_fpn = MODELS.build(self._fpn_cfg)

    # ------------------------------------------------------------------ features
    def extract_frame_feats(self, frames: Tensor) -> Tuple[Tuple[Tensor], Tensor]:
        """(B, 3, H, W) -> neck levels (B, C, H_l, W_l) at strides 8..64 and the stride-4
        backbone map (B, C_4, H/4, W/4)."""
        x = self.backbone(frames)
        return self.neck(x[1:]), x[0]

    @staticmethod
    def _paddings(frame_samples: list, sizes: List[Tuple[int, int]],
                  device) -> List[Optional[Tensor]]:
        """Padding masks (B, h, w) (True = padded) of the frames at every size; None when
        no frame is padded."""
        pad_h, pad_w = frame_samples[0].batch_input_shape
        shapes = [s.img_shape for s in frame_samples]
        if all(tuple(s[:2]) == (pad_h, pad_w) for s in shapes):
            return [None] * len(sizes)
        full = torch.ones(len(shapes), pad_h, pad_w, device=device)
        for i, (h, w) in enumerate(shapes):
            full[i, :h, :w] = 0
        return [F.interpolate(full[None], size=s)[0].bool() for s in sizes]

    def _positions(self, padding: Optional[Tensor], feat: Tensor) -> Tensor:
        """(B, C, h, w) sine positions of a level."""
        if padding is None:
            padding = feat.new_zeros(feat.shape[0], *feat.shape[-2:], dtype=torch.bool)
        return self.positional_encoding(padding)

    def forward_frames(self, frames: Tensor, frame_samples: list, text: Dict[str, Tensor],
                       num_frames: int) -> Dict[str, Tensor]:
        """All prediction sets of ``B = N * T`` frames of N clips.

        Args:
            frames (Tensor): (N*T, 3, H, W). frame_samples (list): N*T DetDataSamples.
            text (dict): per-clip :class:`RobertaTextEncoder` output (N leading).
            num_frames (int): T.

        Returns:
            dict: ``cls`` (L, N*T, Q), ``boxes`` (L, N*T, Q, 4), ``hidden`` (L, N*T, Q, C),
            ``mask_feats`` (N*T, C_m, H/4, W/4), ``valid_ratio`` (N*T, 2).
        """
        feats, stride4 = self.extract_frame_feats(frames)
        frame_text = repeat_text(text, num_frames)
        fused = []
        for f in feats:
            tokens = self.vl_fusion(
                f.flatten(2).transpose(1, 2), frame_text['words'], frame_text['pos'],
                frame_text['padding'])
            fused.append(tokens.transpose(1, 2).reshape(f.shape))
        enc_in, dec_in = self.pre_transformer(fused, frame_samples)
        enc_out = self.forward_encoder(**enc_in)
        bt = frames.shape[0]
        query_pos = self.query_embedding.weight[None].expand(bt, -1, -1)
        query = frame_text['sentence'][:, None].expand(-1, self.num_queries, -1)
        init_ref = self.reference_points_fc(query_pos).sigmoid()
        hidden, refs = self.decoder(
            query=query,
            query_pos=query_pos,
            value=enc_out['memory'],
            key_padding_mask=dec_in['memory_mask'],
            reference_points=init_ref,
            spatial_shapes=dec_in['spatial_shapes'],
            level_start_index=dec_in['level_start_index'],
            valid_ratios=dec_in['valid_ratios'],
            reg_branches=self.bbox_head.reg_branches)
        cls, boxes = [], []
        for lid in range(len(hidden)):
            ref = init_ref if lid == 0 else refs[lid - 1]
            cls.append(self.bbox_head.class_logits(lid, hidden[lid]))
            boxes.append(self.bbox_head.boxes(lid, hidden[lid], ref))
        # CM-FPN over the stride-4 map and the encoder memory at strides 8/16/32
        memory = split_levels(enc_out['memory'], dec_in['spatial_shapes'])
        levels = [stride4] + memory[:3]
        paddings = self._paddings(frame_samples, [lv.shape[-2:] for lv in levels], frames.device)
        poses = [self._positions(p, lv) for p, lv in zip(paddings, levels)]
        mask_feats = self.cm_fpn(levels, poses, paddings, text, num_frames)
        _, ratio = mask_padding_and_ratio(frame_samples, mask_feats)
        return dict(
            cls=torch.stack(cls),
            boxes=torch.stack(boxes),
            hidden=hidden,
            mask_feats=mask_feats,
            valid_ratio=ratio)

    def predict_masks(self, hidden: Tensor, boxes: Tensor, out: Dict) -> Tensor:
        """(B, Q, h, w) mask logits of (B, Q, C) queries with (B, Q, 4) boxes."""
        return self.bbox_head.mask_decoder(
            hidden, boxes.detach(), out['mask_feats'], valid_ratio=out['valid_ratio'])

    # ------------------------------------------------------------------ training
    def forward_clips(self, batch_inputs: Tensor,
                      batch_data_samples: List[TrackDataSample]) -> List[Dict[str, Tensor]]:
        """Per decoder layer: ``cls`` (N, T, Q), ``boxes`` (N, T, Q, 4), ``masks``
        (N, T, Q, h, w)."""
        n, t = batch_inputs.shape[:2]
        frame_samples = [f for clip in batch_data_samples for f in clip.video_data_samples]
        text = self.text_encoder([clip_text(s) for s in batch_data_samples])
        out = self.forward_frames(batch_inputs.flatten(0, 1), frame_samples, text, t)
        outputs = []
        for lid in range(len(out['cls'])):
            masks = self.predict_masks(out['hidden'][lid], out['boxes'][lid], out)
            outputs.append(
                to_clip_shape(
                    dict(cls=out['cls'][lid], boxes=out['boxes'][lid], masks=masks), n, t))
        return outputs

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict_clip(self, frames: Tensor, frame_samples: list, text: str) -> List[InstanceData]:
        """Whole clip (T, 3, H, W) in one pass (all frames share the queries); the sequence(s)
        with the highest mean score are selected (``test_cfg.select``)."""
        out = self.forward_frames(frames, frame_samples, self.text_encoder([text]),
                                  len(frame_samples))
        cls, boxes, hidden = out['cls'][-1], out['boxes'][-1], out['hidden'][-1]
        sel = self.bbox_head.select_queries(cls)
        masks = self.predict_masks(hidden[:, sel], boxes[:, sel], out)
        return list(
            self.bbox_head.predict_by_feat(masks, boxes[:, sel], cls[:, sel], frame_samples))

"""ReferDINO: Grounding DINO per frame + temporal enhancer + grounding-guided mask decoder."""
import copy
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmdet.models.detectors import GroundingDINO
from mmdet.registry import MODELS
from mmdet.structures import TrackDataSample
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from mmengine.structures import InstanceData
from torch import Tensor

from ..layers.checkpoint_wrapper import wrap_encoder_checkpointing
from ..layers.lora import apply_trainable, inject_lora, merged_lora, reset_lora
from ..layers.folded_vl_attention import use_folded_vl_attention
from ..layers.msda import use_cpu_fast_msda
from ..layers.pruning_decoder import PruningGroundingDinoDecoder

TEXT_KEYS = ('embedded', 'masks', 'position_ids', 'text_token_mask', 'hidden')


class TextTruncatedWarning(UserWarning):
    """A referring expression is longer than the text model reads; its tail is dropped."""


def warn_truncated_captions(language_model, captions: Sequence[str]) -> None:
    """Warn for every caption with more tokens (special tokens included) than
    ``language_model.max_tokens``; the text model truncates it there."""
    limit = getattr(language_model, 'max_tokens', None)
    tokenizer = getattr(language_model, 'tokenizer', None)
    if limit is None or tokenizer is None:
        return
    for caption in captions:
        count = len(tokenizer(caption, truncation=False)['input_ids'])
        if count > limit:
            shown = caption if len(caption) <= 80 else caption[:77] + '...'
            warnings.warn(f'the expression {shown!r} has {count} tokens; the text model reads '
                          f'{limit}, the last {count - limit} are dropped',
                          TextTruncatedWarning, stacklevel=3)


def _repeat_text(text_dict: dict, times: int) -> dict:
    """Repeat every per-clip text tensor ``times`` times along the batch (clip -> frames)."""
    return {k: (v.repeat_interleave(times, 0) if isinstance(v, Tensor) else v)
            for k, v in text_dict.items()}


def _slice_text(text_dict: dict, index: int, times: int) -> dict:
    """The text of clip ``index`` repeated for ``times`` frames."""
    return {k: (v[index:index + 1].expand(times, *v.shape[1:]) if isinstance(v, Tensor) else v)
            for k, v in text_dict.items()}


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """Gather along dim 2 of ``x`` (N, T, Q, ...) with ``index`` (N, T, K)."""
    shape = index.shape + x.shape[3:]
    idx = index.reshape(index.shape + (1, ) * (x.dim() - 3)).expand(shape)
    return torch.gather(x, 2, idx)


def _frame_times(frame_samples: Sequence, n: int, t: int, device) -> Tensor:
    """(N, T) frame indices in the video (``frame_index`` metainfo; 0..T-1 where absent)."""
    times = [s.metainfo.get('frame_index', i % t) for i, s in enumerate(frame_samples)]
    return torch.as_tensor(times, dtype=torch.float32, device=device).reshape(n, t)


@MODELS.register_module()
class ReferDINO(GroundingDINO):
    """ReferDINO for referring video object segmentation.

    Inputs are clips: ``batch_inputs`` (N, T, 3, H, W) and ``N`` :class:`TrackDataSample` s,
    each with one sentence (``.text``). The sentence is encoded once per clip and shared by
    its ``T`` frames. Every frame runs Grounding DINO (backbone -> cross-modal encoder ->
    :class:`PruningGroundingDinoDecoder`, no denoising queries); the
    :class:`TemporalEnhancer` tracks and refines the per-frame queries over the clip; the head
    predicts class (max over tokens), boxes and masks (:class:`GroundingMaskDecoder` on the
    :class:`RVOSPixelDecoder` map).

    Args:
        pixel_decoder (dict): :class:`RVOSPixelDecoder` config.
        temporal_enhancer (dict, optional): :class:`TemporalEnhancer` config; None disables.
        enc_mask_loss (bool): also predict masks for the encoder proposals in training.
        lora (dict, optional): :func:`inject_lora` arguments (``targets``, ``rank``,
            ``alpha``, ``exclude``); None trains without LoRA.
        trainable (list[str], optional): regexes of the parameter names left trainable;
            all others are frozen. None trains everything.
        encoder_cp (int): activation checkpointing (torch.utils.checkpoint) of the first
            ``encoder_cp`` visual and fusion layers of the encoder, to save training memory.
        **kwargs: ``GroundingDINO`` arguments. ``decoder`` accepts ``drop_rate`` and
            ``prune_mode``. The backbone must output 4 levels (stride 4 first); the neck takes
            the last three. ``test_cfg``: ``chunk_size`` (frames per chunk, 36),
            ``select`` ('top1' | 'threshold' | 'all'), ``score_thr`` (0.2, threshold mode),
            ``mask_thr`` (0.5), ``mask_queries`` ('all': every surviving query goes through
            the mask decoder, whose self-attention then sees the same queries as in training,
            as the official code; 'selected': only the selected sequences, cheaper, an
            approximation), ``autocast`` (None, default: fp32; ``'bf16'``: inference under
            ``torch.autocast`` in bfloat16 on the frames' device, CPU or GPU; mask logits
            are thresholded in fp32), ``single_frame_temporal`` (True, the official video
            evaluation's ``infer``: the temporal decoder also runs on a 1-frame video; False:
            as its ``forward``, which its A2D / JHMDB evaluation uses), ``mask_rescale``
            (``'bilinear'``, default: logits upsampled to the original size, then
            thresholded; ``'threshold_nearest'``, the official A2D / JHMDB post-processing:
            upsampled to the padded input size, thresholded, cropped, nearest to the
            original size).
        mask_sets_in_one_pass (bool): in training, run the mask decoder once for all
            prediction sets (every decoder layer and the encoder proposals) instead of once
            per set; same masks, F_seg projected once. Pays for few queries (the CPU toy
            recipe: 19-24 % of a training step); with hundreds of queries per set the joint
            self-attention costs more than it saves. Defaults to False.
        mask_reference (str): the boxes that place the mask decoder's deformable sampling
            and query positions. ``'input'`` (default, the official code): each decoder
            layer's (detached) *input* reference boxes, tracked with the queries, and for the
            encoder proposals their unrefined anchors (``init_box_proposal``). ``'predicted'``:
            the boxes the layer predicts (not detached, so mask gradients reach the box
            branch); the synthetic benchmark's toy configs were tuned with it.
        cpu_fast_msda (bool): run the deformable attention of the encoder, decoder and mask
            decoder through :class:`CPUFastMultiScaleDeformableAttention` (on CPU: the levels
            reduced as they are sampled instead of mmcv's stacked fallback; on CUDA: mmcv's
            op). Same parameters and results. Defaults to True.
        fold_vl_attention (bool): at inference, fold the projections of the encoder's
            image-text fusion attention into per-sentence matrices
            (:class:`FoldedBiMultiHeadAttention`; the image tokens skip three 256 x 1024
            projections per layer). Same parameters; results equal up to float rounding.
            Defaults to True.
    """

    def __init__(self, *args, pixel_decoder: dict,
                 temporal_enhancer: Optional[dict] = dict(type='TemporalEnhancer'),
                 enc_mask_loss: bool = True, lora: Optional[dict] = None,
                 trainable: Optional[Sequence[str]] = None, encoder_cp: int = 0,
                 mask_sets_in_one_pass: bool = False, mask_reference: str = 'input',
                 cpu_fast_msda: bool = True, fold_vl_attention: bool = True,
                 **kwargs) -> None:
        if mask_reference not in ('input', 'predicted'):
            raise ValueError("mask_reference must be 'input' or 'predicted', got "
                             f'{mask_reference!r}')
        self.mask_reference = mask_reference
        # DINO requires a denoising generator; ReferDINO uses no denoising queries and
        # removes it after construction.
        kwargs.setdefault('dn_cfg', dict(label_noise_scale=0.5, box_noise_scale=1.0,
                                         group_cfg=dict(dynamic=True, num_dn_queries=1)))
        super().__init__(*args, **kwargs)
        del self.dn_query_generator
        self.pixel_decoder = MODELS.build(pixel_decoder)
        self.temporal = MODELS.build(temporal_enhancer) if temporal_enhancer else None
        self.enc_mask_loss = enc_mask_loss
        self.mask_sets_in_one_pass = mask_sets_in_one_pass
        if mask_sets_in_one_pass and not hasattr(self.bbox_head.mask_decoder, 'forward_sets'):
            raise ValueError('mask_sets_in_one_pass needs a mask decoder with forward_sets '
                             f'(GroundingMaskDecoder), got '
                             f'{type(self.bbox_head.mask_decoder).__name__}')
        self.test_cfg = {**dict(chunk_size=36, select='top1', score_thr=0.2, mask_thr=0.5,
                                mask_queries='all', autocast=None, single_frame_temporal=True,
                                mask_rescale='bilinear'), **(self.test_cfg or {})}
        if self.test_cfg['mask_rescale'] not in ('bilinear', 'threshold_nearest'):
            raise ValueError("test_cfg.mask_rescale must be 'bilinear' or "
                             f"'threshold_nearest', got {self.test_cfg['mask_rescale']!r}")
        if self.test_cfg['autocast'] not in (None, 'bf16'):
            raise ValueError("test_cfg.autocast must be None or 'bf16', got "
                             f"{self.test_cfg['autocast']!r}")
        if self.test_cfg['mask_queries'] not in ('all', 'selected'):
            raise ValueError("test_cfg.mask_queries must be 'all' or 'selected', got "
                             f"{self.test_cfg['mask_queries']!r}")
        if cpu_fast_msda:
            use_cpu_fast_msda(self)  # before LoRA wraps the attention's Linears
        if fold_vl_attention:
            use_folded_vl_attention(self)
        self.num_lora_layers = inject_lora(self, **lora) if lora else 0
        apply_trainable(self, trainable)
        wrap_encoder_checkpointing(self.encoder, encoder_cp)

    def init_weights(self) -> None:
        """Grounding DINO's initialisation; LoRA adapters are then reset (B = 0) so that a
        freshly initialised LoRA model equals its base model."""
        super().init_weights()
        reset_lora(self)

    def _init_layers(self) -> None:
        cfg = copy.deepcopy(dict(self.decoder))
        prune = dict(drop_rate=cfg.pop('drop_rate', 0.5),
                     prune_mode=cfg.pop('prune_mode', 'confidence'))
        self.decoder = cfg
        super()._init_layers()
        self.decoder = PruningGroundingDinoDecoder(**cfg, **prune)

    # ------------------------------------------------------------------ text
    def encode_text(self, texts: Sequence[str]) -> Dict[str, Tensor]:
        """Encode one sentence per clip.

        A sentence longer than the text model's ``max_tokens`` is cut there (as Grounding
        DINO does) with a :class:`TextTruncatedWarning` that names it and its length.

        Returns:
            dict: ``embedded`` (N, L, C) mapped to the transformer width, ``masks`` (N, L, L)
            sub-sentence attention, ``position_ids`` (N, L), ``text_token_mask`` (N, L).
        """
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f'ReferDINO needs a non-empty referring expression, got {text!r}')
        captions = [t.strip() if t.strip().endswith('.') else t.strip() + '.' for t in texts]
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

    def pre_decoder(self, memory: Tensor, memory_mask: Tensor, spatial_shapes: Tensor,
                    memory_text: Tensor, text_token_mask: Tensor,
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
        enc_logits = self.bbox_head.class_logits(layer, output_memory, memory_text,
                                                 text_token_mask)
        enc_coord_unact = self.bbox_head.reg_branches[layer](output_memory) + output_proposals
        topk = self.select_proposals(enc_logits, min(self.num_queries, enc_logits.shape[1]))
        enc_cls = torch.gather(enc_logits, 1, topk)
        coords = torch.gather(enc_coord_unact, 1, topk[..., None].expand(-1, -1, 4))
        anchors = torch.gather(output_proposals, 1, topk[..., None].expand(-1, -1, 4))
        enc_embed = torch.gather(output_memory, 1,
                                 topk[..., None].expand(-1, -1, output_memory.shape[-1]))
        query = self.query_embedding.weight[None, :topk.shape[1]].expand(bsz, -1, -1)
        decoder_inputs = dict(query=query, memory=memory,
                              reference_points=coords.detach().sigmoid(),
                              memory_text=memory_text, text_attention_mask=~text_token_mask)
        enc_outputs = dict(enc_cls=enc_cls, enc_boxes=coords.sigmoid(),
                           enc_anchors=anchors.sigmoid(), enc_embed=enc_embed)
        return decoder_inputs, enc_outputs

    def select_proposals(self, enc_logits: Tensor, k: int) -> Tensor:
        """Indices (B, k) of the encoder proposals that become the decoder's queries: the
        top-k class logits (B, S), best first. One place to override or hook (e.g.
        ``tools/analysis_tools/official_parity.py --force-topk-order``)."""
        return torch.topk(enc_logits, k=k, dim=1)[1]

    def _split_memory(self, memory: Tensor, spatial_shapes: Tensor) -> List[Tensor]:
        """(B, S, C) flattened memory -> list of (B, C, H_l, W_l), fine to coarse."""
        sizes = [int(h * w) for h, w in spatial_shapes.tolist()]
        levels = memory.split(sizes, dim=1)
        return [lvl.transpose(1, 2).reshape(memory.shape[0], -1, int(h), int(w))
                for lvl, (h, w) in zip(levels, spatial_shapes.tolist())]

    def _mask_geometry(self, frame_samples, mask_feats: Tensor) -> Tuple[Optional[Tensor], Tensor]:
        """Padding mask (B, h, w) of F_seg (None without padding) and valid ratios (B, 2)."""
        pad_h, pad_w = frame_samples[0].batch_input_shape
        h, w = mask_feats.shape[-2:]
        shapes = torch.tensor([s.img_shape for s in frame_samples], dtype=torch.float32,
                              device=mask_feats.device)
        ratio = torch.stack([shapes[:, 1] / pad_w, shapes[:, 0] / pad_h], -1)
        if bool((ratio == 1).all()):
            return None, ratio
        ys = torch.arange(h, device=mask_feats.device)[None, :, None]
        xs = torch.arange(w, device=mask_feats.device)[None, None, :]
        padding = (ys >= (ratio[:, 1] * h).ceil()[:, None, None]) | \
                  (xs >= (ratio[:, 0] * w).ceil()[:, None, None])
        return padding, ratio

    def encode_frames(self, frames: Tensor, frame_samples: list, text_dict: Dict[str, Tensor],
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
        memory_levels = self._split_memory(enc_out['memory'], enc_out['spatial_shapes'])
        mask_feats = self.pixel_decoder(memory_levels, stride4)
        padding, ratio = self._mask_geometry(frame_samples, mask_feats)
        return dict(enc_out=enc_out, dec_in=dec_in, memory_text=enc_out['memory_text'],
                    text_token_mask=enc_out['text_token_mask'], mask_feats=mask_feats,
                    mask_padding=padding, valid_ratio=ratio)

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
            query=dec_in['query'], value=dec_in['memory'],
            key_padding_mask=dec_in['memory_mask'], self_attn_mask=None,
            reference_points=dec_in['reference_points'],
            spatial_shapes=dec_in['spatial_shapes'],
            level_start_index=dec_in['level_start_index'],
            valid_ratios=dec_in['valid_ratios'], reg_branches=self.bbox_head.reg_branches,
            class_logits=self.bbox_head.class_logits, memory_text=dec_in['memory_text'],
            text_attention_mask=dec_in['text_attention_mask'])
        out.update(enc_outputs)
        return out

    # ------------------------------------------------------------------ video level
    def _text_per_clip(self, memory_text: Tensor, token_mask: Tensor, n: int, t: int):
        text = memory_text.reshape(n, t, *memory_text.shape[1:])
        mask = token_mask.reshape(n, t, -1)
        return text, mask, text[:, :, 0]

    def temporal_layer(self, hidden: Tensor, reference: Tensor, memory_text: Tensor,
                       token_mask: Tensor, n: int, t: int,
                       times: Optional[Tensor] = None,
                       single_frame: bool = False) -> Tuple[Tensor, Tensor, Tensor]:
        """Track and refine one decoder layer's queries over the clip.

        Args:
            hidden (Tensor): (N*T, Q, C). reference (Tensor): (N*T, Q, 4).
            memory_text (Tensor): (N*T, L, C). token_mask (Tensor): (N*T, L).
            times (Tensor, optional): (N, T) frame indices in the video (0..T-1 if None).
            single_frame (bool): run the temporal decoder also when T=1 (inference).

        Returns:
            tuple: refined hidden (N*T, Q, C), track-ordered reference (N*T, Q, 4) and the
            permutation (N, T, Q) applied to the per-frame queries.
        """
        q = hidden.shape[1]
        hs = hidden.reshape(n, t, q, -1)
        ref = reference.reshape(n, t, q, 4)
        if self.temporal is None:
            perm = torch.arange(q, device=hidden.device).expand(n, t, q)
            return hidden, reference, perm
        text, mask, sentence = self._text_per_clip(memory_text, token_mask, n, t)
        perm = self.temporal.track(hs, text, mask, sentence, ref)
        hs, ref = _gather(hs, perm), _gather(ref, perm)
        hs = self.temporal.refine(hs, sentence, ref, times, single_frame=single_frame)
        return hs.reshape(n * t, q, -1), ref.reshape(n * t, q, 4), perm

    def predict_masks(self, hidden: Tensor, boxes: Tensor, encoded: Dict) -> Tensor:
        """Mask logits (B, Q, H/4, W/4) for (B, Q, C) embeddings and (B, Q, 4) boxes."""
        return self.bbox_head.mask_decoder(hidden, boxes, *self._mask_context(encoded),
                                           query_pos_head=self.decoder.ref_point_head)

    @staticmethod
    def _mask_context(encoded: Dict) -> tuple:
        """The mask decoder's frame inputs: F_seg, text, text padding, pixel padding, ratio."""
        return (encoded['mask_feats'], encoded['memory_text'], ~encoded['text_token_mask'],
                encoded['mask_padding'], encoded['valid_ratio'])

    def forward_clips(self, batch_inputs: Tensor, batch_data_samples: List[TrackDataSample],
                      with_enc: bool = True) -> List[Dict[str, Tensor]]:
        """All prediction sets of a batch of clips (training).

        Returns:
            list[dict]: one per decoder layer (+ encoder proposals, ``name='enc'``), each
            with ``cls`` (N, T, Q), ``boxes`` (N, T, Q, 4), ``masks`` (N, T, Q, h, w).
        """
        n, t = batch_inputs.shape[:2]
        frames = batch_inputs.flatten(0, 1)
        frame_samples = [f for clip in batch_data_samples for f in clip.video_data_samples]
        text_dict = _repeat_text(self.encode_text([self._clip_text(s) for s in
                                                   batch_data_samples]), t)
        encoded = self.encode_frames(frames, frame_samples, text_dict)
        decoded = self.decode_frames(encoded)
        mem_text, tmask = encoded['memory_text'], encoded['text_token_mask']
        times = _frame_times(frame_samples, n, t, frames.device)
        outputs, mask_sets = [], []  # mask_sets: (output it belongs to, embeddings, boxes)
        for lid, (hidden, ref) in enumerate(zip(decoded['hidden_states'],
                                                decoded['references'])):
            hidden, ref, _ = self.temporal_layer(hidden, ref, mem_text, tmask, n, t, times)
            cls = self.bbox_head.class_logits(lid, hidden, mem_text, tmask)
            boxes = self.bbox_head.boxes(lid, hidden, ref)
            outputs.append(dict(cls=cls, boxes=boxes, masks=None))
            mask_sets.append((outputs[-1], hidden, self._mask_boxes(ref, boxes)))
        if with_enc:
            enc = dict(cls=decoded['enc_cls'], boxes=decoded['enc_boxes'], masks=None,
                       name='enc')
            outputs.append(enc)
            if self.enc_mask_loss:
                mask_sets.append((enc, decoded['enc_embed'],
                                  self._mask_boxes(decoded['enc_anchors'],
                                                   decoded['enc_boxes'])))
        if self.bbox_head.mask_decoder is not None:
            masks = self.predict_mask_sets([(h, b) for _, h, b in mask_sets], encoded)
            for (out, _, _), set_masks in zip(mask_sets, masks):
                out['masks'] = set_masks
        return [self._to_clip_shape(out, n, t) for out in outputs]

    def _mask_boxes(self, reference: Tensor, predicted: Tensor) -> Tensor:
        """The boxes given to the mask decoder (``mask_reference``): the layer's input
        reference (official) or its predicted boxes."""
        return reference if self.mask_reference == 'input' else predicted

    def predict_mask_sets(self, sets: List[Tuple[Tensor, Tensor]], encoded: Dict) -> List[Tensor]:
        """Mask logits of several (embeddings (B, Q_i, C), boxes (B, Q_i, 4)) sets on the
        same frames: one mask-decoder pass per set, or one for all of them
        (``mask_sets_in_one_pass``, same result, see
        :meth:`GroundingMaskDecoder.forward_sets`)."""
        if not sets:
            return []
        if not self.mask_sets_in_one_pass:
            return [self.predict_masks(hidden, boxes, encoded) for hidden, boxes in sets]
        hidden, boxes = zip(*sets)
        return self.bbox_head.mask_decoder.forward_sets(
            hidden, boxes, *self._mask_context(encoded),
            query_pos_head=self.decoder.ref_point_head)

    @staticmethod
    def _to_clip_shape(out: Dict, n: int, t: int) -> Dict:
        return {k: (v.reshape(n, t, *v.shape[1:]) if isinstance(v, Tensor) else v)
                for k, v in out.items()}

    @staticmethod
    def _clip_text(sample: TrackDataSample) -> str:
        text = sample.metainfo.get('text')
        if text is None and len(sample.video_data_samples):
            text = sample.video_data_samples[0].metainfo.get('text')
        return text

    # ------------------------------------------------------------------ training
    def build_targets(self, batch_data_samples: List[TrackDataSample],
                      mask_size: Tuple[int, int]) -> Dict[str, Tensor]:
        """Targets of the clips.

        GT masks are padded to the batch input shape and subsampled at stride 4 starting at
        pixel 2 (as the official code) to the (h, w) = ``mask_size`` of the predicted masks.
        When the head computes its mask losses at a finer stride s
        (``bbox_head.mask_loss_stride`` 2 or 1), they are also subsampled at stride s,
        starting at pixel s // 2.

        Returns:
            dict: ``boxes`` (N, T, 4) normalised cxcywh, ``masks`` (N, T, h, w) float,
            ``valid`` (N, T) bool, ``annotated`` (N, T) bool, and with a finer loss stride
            ``loss_masks`` (N, T, 4h / s, 4w / s) float.
        """
        boxes, masks, valid, annotated, loss_masks = [], [], [], [], []
        h, w = mask_size
        stride = self.bbox_head.mask_loss_stride
        for clip in batch_data_samples:
            for frame in clip.video_data_samples:
                gt = frame.gt_instances
                img_h, img_w = frame.img_shape
                bbox = torch.as_tensor(gt.bboxes, dtype=torch.float32).reshape(-1, 4)[:1]
                bbox = bbox / bbox.new_tensor([img_w, img_h, img_w, img_h])
                boxes.append(bbox_xyxy_to_cxcywh(bbox)[0])
                m = gt.masks
                m = m.to_tensor(torch.float32, bbox.device) if hasattr(m, 'to_tensor') \
                    else torch.as_tensor(m, dtype=torch.float32)
                full = m.new_zeros(h * 4, w * 4)
                mh, mw = min(m.shape[-2], h * 4), min(m.shape[-1], w * 4)
                full[:mh, :mw] = m[0, :mh, :mw]
                masks.append(full[2::4, 2::4])
                if stride != 4:
                    loss_masks.append(full[stride // 2::stride, stride // 2::stride])
                valid.append(bool(torch.as_tensor(gt.valid).reshape(-1)[0]))
                annotated.append(bool(torch.as_tensor(gt.annotated).reshape(-1)[0])
                                 if 'annotated' in gt else True)
        n = len(batch_data_samples)
        device = self.query_embedding.weight.device
        targets = dict(boxes=torch.stack(boxes).to(device).reshape(n, -1, 4),
                       masks=torch.stack(masks).to(device).reshape(n, -1, h, w),
                       valid=torch.tensor(valid, device=device).reshape(n, -1),
                       annotated=torch.tensor(annotated, device=device).reshape(n, -1))
        if loss_masks:
            targets['loss_masks'] = torch.stack(loss_masks).to(device).reshape(
                n, -1, *loss_masks[0].shape)
        return targets

    def loss(self, batch_inputs: Tensor, batch_data_samples: List[TrackDataSample]) -> dict:
        """Losses of a batch of clips (N, T, 3, H, W)."""
        outputs = self.forward_clips(batch_inputs, batch_data_samples)
        h, w = batch_inputs.shape[-2] // 4, batch_inputs.shape[-1] // 4
        targets = self.build_targets(batch_data_samples, (h, w))
        img_shape = batch_data_samples[0].video_data_samples[0].img_shape
        return self.bbox_head.loss_by_outputs(outputs, targets, img_shape)

    # ------------------------------------------------------------------ inference
    def predict(self, batch_inputs: Tensor, batch_data_samples: List[TrackDataSample],
                rescale: bool = True) -> List[TrackDataSample]:
        """Segment the referred object in every frame of every clip.

        Sets ``video_data_samples[t].pred_instances`` with ``masks`` (k, H, W) bool at the
        original resolution, ``bboxes`` (k, 4) xyxy and ``scores`` (k,).
        """
        for n, clip in enumerate(batch_data_samples):
            text_dict = self.encode_text([self._clip_text(clip)])
            results = self.predict_video(batch_inputs[n], clip.video_data_samples,
                                         [text_dict])[0]
            for frame, res in zip(clip.video_data_samples, results):
                frame.pred_instances = res
        return batch_data_samples

    def _track_whole_video(self, hidden: Tensor, ref: Tensor, text: Tensor, tmask: Tensor,
                           times: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """Tracker + temporal decoder + head over the whole video (last layer).

        Args:
            hidden (Tensor): (T, Q, C). ref (Tensor): (T, Q, 4). text (Tensor): (T, L, C)
            fused text. tmask (Tensor): (T, L). times (Tensor, optional): (1, T) frame indices.

        Returns:
            tuple: refined hidden (T, Q, C), logits (T, Q), predicted boxes (T, Q, 4) and
            the boxes for the mask decoder (T, Q, 4, see ``mask_reference``).
        """
        t = hidden.shape[0]
        lid = self.decoder.num_layers - 1
        # as the official video inference, the temporal decoder also runs on a 1-frame video
        hidden, ref, _ = self.temporal_layer(
            hidden, ref, text, tmask, 1, t, times,
            single_frame=bool(self.test_cfg['single_frame_temporal']))
        cls = self.bbox_head.class_logits(lid, hidden, text, tmask)
        boxes = self.bbox_head.boxes(lid, hidden, ref)
        return hidden, cls, boxes, self._mask_boxes(ref, boxes)

    def select_queries(self, cls: Tensor) -> Tensor:
        """Indices of the selected query sequences from (T, Q) logits (best first)."""
        scores = cls.sigmoid().mean(0)
        mode = self.test_cfg['select']
        if mode == 'all':
            return scores.argsort(descending=True)
        if mode == 'threshold':
            keep = (scores > self.test_cfg['score_thr']).nonzero()[:, 0]
            if len(keep):
                return keep[scores[keep].argsort(descending=True)]
        elif mode != 'top1':
            raise ValueError(f"test_cfg.select must be 'top1', 'threshold' or 'all', got {mode!r}")
        return scores.argmax()[None]

    @torch.no_grad()
    def predict_video(self, video: Union[Tensor, Sequence], frame_samples: list,
                      text_dicts: Sequence[Dict[str, Tensor]],
                      on_result: Optional[Callable[[int, int, InstanceData], None]] = None
                      ) -> List[List[InstanceData]]:
        """Chunked inference of one or several expressions over one video.

        Pass 1 runs the backbone once per chunk of ``test_cfg.chunk_size`` frames (shared by
        all expressions), then the encoder and decoder per expression, keeping only the last
        layer's queries; the tracker and temporal decoder then run over the whole video;
        pass 2 predicts masks per chunk for the selected sequences only (re-encoding the chunk
        when the video has more than one chunk, so memory does not grow with video length).

        Args:
            video (Tensor | Sequence): (T, 3, H, W) normalised frames, or any object with
                ``len()`` whose slice ``video[a:b]`` gives those frames as a (b - a, 3, H, W)
                tensor (a lazy reader: then only one chunk of frames is in memory at a time;
                a video longer than one chunk is read twice).
            frame_samples (list[DetDataSample]): T samples (``img_shape``, ``ori_shape``,
                ``batch_input_shape``).
            text_dicts (list[dict]): E encoded expressions (:meth:`encode_text`, leading dim 1).
            on_result (callable, optional): ``on_result(e, t, result)`` receives each frame's
                result as soon as it is ready; the results are then not kept (the returned
                lists are empty), so that nothing of the size of the video accumulates.

        Returns:
            list[list[InstanceData]]: E lists of T per-frame results.

        LoRA adapters are merged into their base weights for the call (:func:`merged_lora`;
        restored exactly afterwards), so a model with adapters runs as fast as one without.
        """
        bf16 = self.test_cfg.get('autocast') == 'bf16'
        device = self.query_embedding.weight.device
        with merged_lora(self), torch.autocast(device.type, dtype=torch.bfloat16,
                                               enabled=bf16):
            return self._predict_video(video, frame_samples, text_dicts, on_result)

    def _predict_video(self, video: Union[Tensor, Sequence], frame_samples: list,
                       text_dicts: Sequence[Dict[str, Tensor]],
                       on_result: Optional[Callable] = None) -> List[List[InstanceData]]:
        """:meth:`predict_video` without the LoRA merge."""
        num_frames = len(video)
        if num_frames != len(frame_samples):
            raise ValueError(f'predict_video got {num_frames} frames and '
                             f'{len(frame_samples)} frame samples')
        device = self.query_embedding.weight.device

        def frames(part: slice) -> Tensor:
            return video[part].to(device)

        chunk = int(self.test_cfg['chunk_size'])
        starts = list(range(0, num_frames, chunk))
        single = len(starts) == 1
        num_exp = len(text_dicts)
        pieces = [dict(hidden=[], refs=[], text=[], tmask=[]) for _ in range(num_exp)]
        kept = [None] * num_exp
        for s in starts:
            part = slice(s, s + chunk)
            size = len(frame_samples[part])
            clip = frames(part)
            feats = self.extract_frame_feats(clip)
            for e, text_dict in enumerate(text_dicts):
                encoded = self.encode_frames(clip, frame_samples[part],
                                             _slice_text(text_dict, 0, size), feats)
                decoded = self.decode_frames(encoded)
                pieces[e]['hidden'].append(decoded['hidden_states'][-1])
                pieces[e]['refs'].append(decoded['references'][-1])
                pieces[e]['text'].append(encoded['memory_text'])
                pieces[e]['tmask'].append(encoded['text_token_mask'])
                if single:
                    kept[e] = encoded
            del feats, clip
        tracked = []
        times = _frame_times(frame_samples, 1, num_frames, device)
        for piece in pieces:
            text, tmask = torch.cat(piece['text']), torch.cat(piece['tmask'])
            hidden, cls, boxes, mboxes = self._track_whole_video(
                torch.cat(piece['hidden']), torch.cat(piece['refs']), text, tmask, times)
            tracked.append((hidden, cls, boxes, mboxes, self.select_queries(cls)))
        results = [[] for _ in range(num_exp)]
        for s in starts:
            part = slice(s, s + chunk)
            size = len(frame_samples[part])
            clip = None if single else frames(part)
            feats = None if single else self.extract_frame_feats(clip)
            for e, (hidden, cls, boxes, mboxes, sel) in enumerate(tracked):
                encoded = kept[e] if single else self.encode_frames(
                    clip, frame_samples[part], _slice_text(text_dicts[e], 0, size), feats)
                if self.test_cfg['mask_queries'] == 'all':
                    # as in training and the official code: every surviving query goes through
                    # the mask decoder (its self-attention sees them all), selection after
                    masks = self.predict_masks(hidden[part], mboxes[part], encoded)[:, sel]
                else:  # 'selected': cheaper approximation, the selected sequences only
                    masks = self.predict_masks(hidden[part][:, sel], mboxes[part][:, sel],
                                               encoded)
                for i, frame in enumerate(frame_samples[part]):
                    result = self._frame_result(masks[i], boxes[s + i, sel],
                                                cls[s + i, sel].sigmoid(), frame)
                    if on_result is None:
                        results[e].append(result)
                    else:
                        on_result(e, s + i, result)
                del encoded, masks
            del feats, clip
        return results

    def _frame_result(self, mask_logits: Tensor, boxes: Tensor, scores: Tensor,
                      frame) -> InstanceData:
        """Rescale one frame's (k, h, w) mask logits and (k, 4) boxes to the original size;
        merges the selection into one mask unless ``test_cfg.select == 'all'``. Runs in fp32
        (outside any autocast)."""
        with torch.autocast(mask_logits.device.type, enabled=False):
            return self._rescale_result(mask_logits, boxes, scores, frame)

    def _rescale_result(self, mask_logits: Tensor, boxes: Tensor, scores: Tensor,
                        frame) -> InstanceData:
        pad_h, pad_w = frame.batch_input_shape
        img_h, img_w = frame.img_shape
        ori_h, ori_w = frame.ori_shape
        mask_logits, boxes, scores = mask_logits.float(), boxes.float(), scores.float()
        thr = self.test_cfg['mask_thr']
        if self.test_cfg['mask_rescale'] == 'threshold_nearest':
            fg = F.interpolate(mask_logits[None], size=(pad_h, pad_w), mode='bilinear',
                               align_corners=False).sigmoid() > thr
            fg = F.interpolate(fg[..., :img_h, :img_w].float(), size=(ori_h, ori_w),
                               mode='nearest')[0]
            return self._instances(fg > 0.5, boxes, scores, ori_h, ori_w)
        if (pad_h, pad_w) == (img_h, img_w):
            # no padding: one bilinear step from stride 4 to the original size, as the
            # official evaluation
            logits = F.interpolate(mask_logits[None], size=(ori_h, ori_w), mode='bilinear',
                                   align_corners=False)[0]
        else:  # padded input: upsample to the padded size, crop the padding, then resize
            logits = F.interpolate(mask_logits[None], size=(pad_h, pad_w), mode='bilinear',
                                   align_corners=False)[..., :img_h, :img_w]
            logits = F.interpolate(logits, size=(ori_h, ori_w), mode='bilinear',
                                   align_corners=False)[0]
        return self._instances(logits.sigmoid() > thr, boxes, scores, ori_h, ori_w)

    def _instances(self, masks: Tensor, boxes: Tensor, scores: Tensor, ori_h: int,
                   ori_w: int) -> InstanceData:
        """Per-frame result from (k, H, W) bool masks, (k, 4) cxcywh boxes and (k,) scores;
        merged into one instance unless ``test_cfg.select == 'all'``."""
        xyxy = bbox_cxcywh_to_xyxy(boxes) * boxes.new_tensor([ori_w, ori_h, ori_w, ori_h])
        if self.test_cfg['select'] != 'all' and len(masks) > 1:
            masks = masks.any(0, keepdim=True)
            xyxy = torch.cat([xyxy[:, :2].min(0).values, xyxy[:, 2:].max(0).values])[None]
            scores = scores.max()[None]
        return InstanceData(masks=masks, bboxes=xyxy, scores=scores,
                            labels=torch.zeros(len(masks), dtype=torch.long,
                                               device=masks.device))

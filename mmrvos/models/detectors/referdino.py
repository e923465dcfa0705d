"""ReferDINO: Grounding DINO per frame + temporal enhancer + grounding-guided mask decoder."""
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from mmdet.registry import MODELS
from mmdet.structures import TrackDataSample
from mmengine.structures import InstanceData
from torch import Tensor

from ..layers.checkpoint_wrapper import wrap_encoder_checkpointing
from ..layers.folded_vl_attention import use_folded_vl_attention
from ..layers.lora import apply_trainable, inject_lora, merged_lora, reset_lora
from ..layers.msda import use_cpu_fast_msda
from ..utils import clip_text, frame_times, gather_queries, repeat_text, slice_text, to_clip_shape
from ..utils.autocast import inference_autocast
from ..utils.memory import trim_freed_memory
from .base_rvos import BaseRVOSDetector, check_refiner_cfg
from .per_frame_grounding_dino import PerFrameGroundingDINO


@MODELS.register_module()
class ReferDINO(BaseRVOSDetector, PerFrameGroundingDINO):
    """ReferDINO for referring video object segmentation.

    Inputs are clips (:class:`BaseRVOSDetector`). The sentence is encoded once per clip and
    shared by its ``T`` frames. Every frame runs Grounding DINO (:class:`PerFrameGroundingDINO`:
    backbone -> cross-modal encoder -> :class:`PruningGroundingDinoDecoder`); the
    :class:`TemporalEnhancer` tracks and refines the per-frame queries over the clip; the head
    (:class:`ReferDINOHead`) predicts class (max over tokens), boxes and masks
    (:class:`GroundingMaskDecoder` on the :class:`RVOSPixelDecoder` map) and owns the targets,
    losses and the selection of the predictions.

    Args:
        temporal_enhancer (dict, optional): :class:`TemporalEnhancer` config; None disables.
        enc_mask_loss (bool): also predict masks for the encoder proposals in training.
        lora (dict, optional): :func:`inject_lora` arguments (``targets``, ``rank``,
            ``alpha``, ``exclude``); None trains without LoRA.
        trainable (list[str], optional): regexes of the parameter names left trainable;
            all others are frozen. None trains everything.
        encoder_cp (int): activation checkpointing (torch.utils.checkpoint) of the first
            ``encoder_cp`` visual and fusion layers of the encoder, to save training memory.
        **kwargs: :class:`PerFrameGroundingDINO` arguments (``pixel_decoder``, the
            ``GroundingDINO`` ones; ``decoder`` accepts ``drop_rate`` and ``prune_mode``).
            ``test_cfg``: the head's (``select``, ``score_thr``,
            ``mask_thr``, ``mask_rescale``: :class:`BaseRVOSHead`) and ``chunk_size`` (frames
            per chunk, 36), ``mask_queries`` ('all': every surviving query goes through the
            mask decoder, whose self-attention then sees the same queries as in training, as
            the official code; 'selected': only the selected sequences, cheaper, an
            approximation), ``autocast`` (None, default: fp32; ``'bf16'``: inference under
            ``torch.autocast`` in bfloat16 on the frames' device, CPU or GPU; mask logits
            are thresholded in fp32), ``single_frame_temporal`` (True, the official video
            evaluation's ``infer``: the temporal decoder also runs on a 1-frame video; False:
            as its ``forward``, which its A2D / JHMDB evaluation uses).
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

    refines_in_predict_clip = True  # predict_video applies test_cfg.refiner

    def __init__(self,
                 *args,
                 temporal_enhancer: Optional[dict] = dict(type='TemporalEnhancer'),
                 enc_mask_loss: bool = True,
                 lora: Optional[dict] = None,
                 trainable: Optional[Sequence[str]] = None,
                 encoder_cp: int = 0,
                 mask_sets_in_one_pass: bool = False,
                 mask_reference: str = 'input',
                 cpu_fast_msda: bool = True,
                 fold_vl_attention: bool = True,
                 **kwargs) -> None:
        if mask_reference not in ('input', 'predicted'):
            raise ValueError("mask_reference must be 'input' or 'predicted', got "
                             f'{mask_reference!r}')
        self.mask_reference = mask_reference
        super().__init__(*args, **kwargs)
        self.temporal = MODELS.build(temporal_enhancer) if temporal_enhancer else None
        self.enc_mask_loss = enc_mask_loss
        self.mask_sets_in_one_pass = mask_sets_in_one_pass
        if mask_sets_in_one_pass and not hasattr(self.bbox_head.mask_decoder, 'forward_sets'):
            raise ValueError('mask_sets_in_one_pass needs a mask decoder with forward_sets '
                             f'(GroundingMaskDecoder), got '
                             f'{type(self.bbox_head.mask_decoder).__name__}')
        # the head's test_cfg (selection, post-processing) + the video inference keys
        self.test_cfg = {
            **dict(
                chunk_size=36,
                mask_queries='all',
                autocast=None,
                single_frame_temporal=True,
                refiner=None),
            **self.test_cfg
        }
        if self.test_cfg['autocast'] not in (None, 'bf16'):
            raise ValueError("test_cfg.autocast must be None or 'bf16', got "
                             f"{self.test_cfg['autocast']!r}")
        check_refiner_cfg(self.test_cfg['refiner'])
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

    # ------------------------------------------------------------------ video level
    def temporal_layer(self,
                       hidden: Tensor,
                       reference: Tensor,
                       memory_text: Tensor,
                       token_mask: Tensor,
                       n: int,
                       t: int,
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
        text = memory_text.reshape(n, t, *memory_text.shape[1:])
        mask, sentence = token_mask.reshape(n, t, -1), text[:, :, 0]
        perm = self.temporal.track(hs, text, mask, sentence, ref)
        hs, ref = gather_queries(hs, perm), gather_queries(ref, perm)
        hs = self.temporal.refine(hs, sentence, ref, times, single_frame=single_frame)
        return hs.reshape(n * t, q, -1), ref.reshape(n * t, q, 4), perm

    def forward_clips(self,
                      batch_inputs: Tensor,
                      batch_data_samples: List[TrackDataSample],
                      with_enc: bool = True) -> List[Dict[str, Tensor]]:
        """All prediction sets of a batch of clips (training).

        Returns:
            list[dict]: one per decoder layer (+ encoder proposals, ``name='enc'``), each
            with ``cls`` (N, T, Q), ``boxes`` (N, T, Q, 4), ``masks`` (N, T, Q, h, w).
        """
        n, t = batch_inputs.shape[:2]
        frames = batch_inputs.flatten(0, 1)
        frame_samples = [f for clip in batch_data_samples for f in clip.video_data_samples]
        text_dict = repeat_text(self.encode_text([clip_text(s) for s in batch_data_samples]), t)
        encoded = self.encode_frames(frames, frame_samples, text_dict)
        decoded = self.decode_frames(encoded)
        mem_text, tmask = encoded['memory_text'], encoded['text_token_mask']
        times = frame_times(frame_samples, n, t, frames.device)
        outputs, mask_sets = [], []  # mask_sets: (output it belongs to, embeddings, boxes)
        for lid, (hidden, ref) in enumerate(zip(decoded['hidden_states'], decoded['references'])):
            hidden, ref, _ = self.temporal_layer(hidden, ref, mem_text, tmask, n, t, times)
            cls = self.bbox_head.class_logits(lid, hidden, mem_text, tmask)
            boxes = self.bbox_head.boxes(lid, hidden, ref)
            outputs.append(dict(cls=cls, boxes=boxes, masks=None))
            mask_sets.append((outputs[-1], hidden, self._mask_boxes(ref, boxes)))
        if with_enc:
            enc = dict(cls=decoded['enc_cls'], boxes=decoded['enc_boxes'], masks=None, name='enc')
            outputs.append(enc)
            if self.enc_mask_loss:
                mask_sets.append((enc, decoded['enc_embed'],
                                  self._mask_boxes(decoded['enc_anchors'], decoded['enc_boxes'])))
        if self.bbox_head.mask_decoder is not None:
            masks = self.bbox_head.mask_logits_of_sets([(h, b) for _, h, b in mask_sets], encoded,
                                                       self.decoder.ref_point_head,
                                                       self.mask_sets_in_one_pass)
            for (out, _, _), set_masks in zip(mask_sets, masks):
                out['masks'] = set_masks
        return [to_clip_shape(out, n, t) for out in outputs]

    def _mask_boxes(self, reference: Tensor, predicted: Tensor) -> Tensor:
        """The boxes given to the mask decoder (``mask_reference``): the layer's input
        reference (official) or its predicted boxes."""
        return reference if self.mask_reference == 'input' else predicted

    # ------------------------------------------------------------------ inference
    def predict_clip(self, frames: Tensor, frame_samples: list, text: str) -> List[InstanceData]:
        """T per-frame results of one clip (T, 3, H, W) (:meth:`predict_video`)."""
        return self.predict_video(frames, frame_samples, [self.encode_text([text])])[0]

    def _track_whole_video(self,
                           hidden: Tensor,
                           ref: Tensor,
                           text: Tensor,
                           tmask: Tensor,
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
        # as the official video inference, the temporal decoder also runs on a 1-frame video
        hidden, ref, _ = self.temporal_layer(
            hidden,
            ref,
            text,
            tmask,
            1,
            t,
            times,
            single_frame=bool(self.test_cfg['single_frame_temporal']))
        return (hidden, *self.last_layer_predictions(hidden, ref, text, tmask))

    def last_layer_predictions(self, hidden: Tensor, ref: Tensor, text: Tensor,
                               tmask: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """The head on the last decoder layer's (tracked, refined) queries of B frames.

        Args:
            hidden (Tensor): (B, Q, C). ref (Tensor): (B, Q, 4) reference boxes.
            text (Tensor): (B, L, C) fused text. tmask (Tensor): (B, L).

        Returns:
            tuple: logits (B, Q), predicted boxes (B, Q, 4) and the boxes for the mask
            decoder (B, Q, 4, see ``mask_reference``).
        """
        lid = self.decoder.num_layers - 1
        cls = self.bbox_head.class_logits(lid, hidden, text, tmask)
        boxes = self.bbox_head.boxes(lid, hidden, ref)
        return cls, boxes, self._mask_boxes(ref, boxes)

    def predict_frames(self, hidden: Tensor, cls: Tensor, boxes: Tensor, mask_boxes: Tensor,
                       selected: Tensor, encoded: Dict,
                       frame_samples: Sequence) -> Iterator[InstanceData]:
        """Masks and per-frame results of the selected query sequences on B encoded frames
        (pass 2 of :meth:`predict_video`, one frame of :class:`~mmrvos.apis.RVOSStream`).

        Args:
            hidden (Tensor): (B, Q, C) refined queries. cls (Tensor): (B, Q) logits.
            boxes (Tensor): (B, Q, 4). mask_boxes (Tensor): (B, Q, 4).
            selected (Tensor): (k,) indices of the selected query sequences.
            encoded (dict): :meth:`encode_frames` of the B frames.
            frame_samples (Sequence): B samples.

        Returns:
            Iterator[InstanceData]: :meth:`BaseRVOSHead.predict_by_feat`.
        """
        pos_head = self.decoder.ref_point_head
        if self.test_cfg['mask_queries'] == 'all':
            # as in training and the official code: every surviving query goes through
            # the mask decoder (its self-attention sees them all), selection after
            masks = self.bbox_head.mask_logits(hidden, mask_boxes, encoded, pos_head)[:, selected]
        else:  # 'selected': cheaper approximation, the selected sequences only
            masks = self.bbox_head.mask_logits(hidden[:, selected], mask_boxes[:, selected],
                                               encoded, pos_head)
        return self.bbox_head.predict_by_feat(masks, boxes[:, selected], cls[:, selected],
                                              frame_samples)

    @torch.no_grad()
    def predict_video(
        self,
        video: Union[Tensor, Sequence],
        frame_samples: list,
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
        refiner = self.refiner
        with merged_lora(self), inference_autocast(self, device.type, enabled=bf16):
            if refiner is None:
                return self._predict_video(video, frame_samples, text_dicts, on_result)
            # the refiner needs every frame's mask of an expression: all results kept
            results = self._predict_video(video, frame_samples, text_dicts)
        results = self.refine_video(video, frame_samples, results)
        if on_result is None:
            return results
        for e, frame_results in enumerate(results):
            for t, result in enumerate(frame_results):
                on_result(e, t, result)
        return [[] for _ in results]

    def _predict_video(self,
                       video: Union[Tensor, Sequence],
                       frame_samples: list,
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
        # per expression, the last layer's queries of every frame: whole-video buffers filled
        # chunk by chunk (one allocation each, not one per chunk kept among the chunks'
        # temporaries, which fragments the heap of a long video)
        pieces = [dict() for _ in range(num_exp)]
        kept = [None] * num_exp
        for s in starts:
            part = slice(s, s + chunk)
            size = len(frame_samples[part])
            clip = frames(part)
            feats = self.extract_frame_feats(clip)
            for e, text_dict in enumerate(text_dicts):
                encoded = self.encode_frames(clip, frame_samples[part],
                                             slice_text(text_dict, 0, size), feats)
                decoded = self.decode_frames(encoded)
                _store(
                    pieces[e],
                    s,
                    num_frames,
                    hidden=decoded['hidden_states'][-1],
                    refs=decoded['references'][-1],
                    text=encoded['memory_text'],
                    tmask=encoded['text_token_mask'])
                if single:
                    kept[e] = encoded
            del feats, clip, encoded, decoded
            trim_freed_memory()  # the chunk's temporaries: not kept by the heap
        tracked = []
        times = frame_times(frame_samples, 1, num_frames, device)
        for piece in pieces:  # each expression's buffers released once tracked
            text, tmask = piece.pop('text'), piece.pop('tmask')
            hidden, cls, boxes, mboxes = self._track_whole_video(
                piece.pop('hidden'), piece.pop('refs'), text, tmask, times)
            tracked.append((hidden, cls, boxes, mboxes, self.bbox_head.select_queries(cls)))
        results = [[] for _ in range(num_exp)]
        for s in starts:
            part = slice(s, s + chunk)
            size = len(frame_samples[part])
            clip = None if single else frames(part)
            feats = None if single else self.extract_frame_feats(clip)
            for e, (hidden, cls, boxes, mboxes, sel) in enumerate(tracked):
                encoded = kept[e] if single else self.encode_frames(
                    clip, frame_samples[part], slice_text(text_dicts[e], 0, size), feats)
                frame_results = self.predict_frames(hidden[part], cls[part], boxes[part],
                                                    mboxes[part], sel, encoded, frame_samples[part])
                for i, result in enumerate(frame_results):  # one frame at a time
                    if on_result is None:
                        results[e].append(result)
                    else:
                        on_result(e, s + i, result)
                del encoded, frame_results
            del feats, clip
            trim_freed_memory()
        return results


def _store(buffers: Dict[str, Tensor], start: int, total: int, **parts: Tensor) -> None:
    """Copy a chunk's per-frame tensors (b, ...) into ``buffers[name]`` (total, ...) at
    ``start``, allocating each buffer at the first chunk."""
    for name, part in parts.items():
        if name not in buffers:
            buffers[name] = part.new_empty((total, *part.shape[1:]))
        buffers[name][start:start + len(part)] = part

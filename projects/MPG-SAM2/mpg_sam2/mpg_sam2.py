"""MPG-SAM 2 (Rong et al., ICCV 2025): SAM 2 prompted by a BEiT-3 mask prior generator, with
global-historical aggregation, for referring video object segmentation."""
import warnings
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import TrackDataSample
from mmengine.structures import InstanceData
from torch import Tensor

from mmrvos.models.detectors import BaseRVOSDetector
from mmrvos.models.utils import TextTruncatedWarning, clip_text


def load_tokenizer(path: str):
    """A local Hugging Face tokenizer folder (never downloaded): BEiT-3's XLM-R sentencepiece
    tokenizer (``tokenizer.json``, or ``sentencepiece.bpe.model`` with ``sentencepiece``
    installed), or any fast tokenizer whose ids fit the encoder's vocabulary."""
    import os.path as osp

    from transformers import AutoTokenizer
    if not osp.isdir(path):
        raise FileNotFoundError(f'MPG-SAM 2: tokenizer folder {path} does not exist (a folder '
                                'with tokenizer.json / tokenizer_config.json, e.g. the one of '
                                'the official MPG-SAM 2 release)')
    return AutoTokenizer.from_pretrained(path, local_files_only=True)


@MODELS.register_module()
class MPGSAM2(BaseRVOSDetector, BaseDetector):
    """MPG-SAM 2 on transformers' SAM 2.

    Per clip (T frames, one sentence): BEiT-3 encodes every frame (resized to its square
    input) with the sentence -> [CLS] (T, D), patches (T, g*g, D), text (T, L, D); the
    :class:`MaskPriorGenerator` gives the mask priors (T, 1, g, g) and the global video
    feature V_g (1, T, g*g, C); ``sparse_prompt_mlp([CLS])`` is the sparse prompt,
    ``text_proj(text)`` the sentence tokens of the aggregator, ``sentence_score`` the scalar of
    the mask-text similarity loss; :class:`MPGSam2Tracker` segments the clip frame by frame
    (frame 0 conditions SAM 2's memory).

    Inputs are clips ``(N, T, 3, S, S)`` (frames resized to SAM 2's square input without
    keeping the aspect ratio, as the official code) with N :class:`TrackDataSample` s.

    Args:
        multimodal_encoder (dict): :class:`BEiT3`.
        mask_prior_generator (dict): :class:`MaskPriorGenerator` (``embed_dims`` and
            ``out_dims`` are set from the encoder and SAM 2).
        tracker (dict): :class:`MPGSam2Tracker` (SAM 2 config, aggregator, frozen encoder).
        bbox_head (dict): :class:`MPGSAM2Head` (losses, ``test_cfg``).
        tokenizer (str): local tokenizer folder (:func:`load_tokenizer`), read on first use.
        max_text_length (int): tokens kept per sentence (incl. ``<s>``/``</s>``); longer
            sentences are cut with a :class:`TextTruncatedWarning`.
        mask_unknown_tokens (bool): attention mask = ``ids != unk_id``: the official code
            sets ``pad_token = unk_token`` and masks "padding", so unknown words are not
            attended to. Default True (official).
        data_preprocessor (dict): mmdet ``TrackDataPreprocessor``.
        test_cfg (dict): the head's (``mask_thr``, ``chunk_size``).
    """

    def __init__(self,
                 multimodal_encoder: dict,
                 mask_prior_generator: dict,
                 tracker: dict,
                 bbox_head: dict,
                 tokenizer: str,
                 max_text_length: int = 64,
                 mask_unknown_tokens: bool = True,
                 data_preprocessor: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        BaseDetector.__init__(self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.test_cfg = test_cfg
        self.multimodal_encoder = MODELS.build(multimodal_encoder)
        self.sam2 = MODELS.build(tracker)
        d, c = self.multimodal_encoder.embed_dims, self.sam2.hidden_dim
        self.mask_prior_generator = MODELS.build(
            dict(mask_prior_generator, embed_dims=d, out_dims=c))
        self.sparse_prompt_mlp = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, c))
        self.text_proj = nn.Linear(d, c)
        self.sentence_score = nn.Linear(c, 1)
        self.bbox_head = MODELS.build(dict(bbox_head, test_cfg=test_cfg))
        self.tokenizer_path = tokenizer
        self._tokenizer = None
        self.max_text_length = max_text_length
        self.mask_unknown_tokens = mask_unknown_tokens

    # ------------------------------------------------------------------ text
    @property
    def tokenizer(self):
        """Loaded on first use (building the model, e.g. to convert or check a checkpoint,
        does not need the tokenizer folder)."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.tokenizer_path)
        return self._tokenizer

    def tokenize(self, text: str, device) -> Dict[str, Tensor]:
        """``input_ids`` (1, L) and ``padding`` (1, L) bool of one sentence."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f'MPG-SAM 2 needs a non-empty referring expression, got {text!r}')
        ids = self.tokenizer(text.strip())['input_ids']
        if len(ids) > self.max_text_length:
            warnings.warn(
                f'referring expression of {len(ids)} tokens cut to {self.max_text_length}: '
                f'{text!r}', TextTruncatedWarning)
            ids = ids[:self.max_text_length - 1] + ids[-1:]
        ids = torch.tensor([ids], device=device)
        skip = self.tokenizer.unk_token_id if self.mask_unknown_tokens \
            else self.tokenizer.pad_token_id
        return dict(input_ids=ids, padding=ids == skip)

    # ------------------------------------------------------------------ features
    def extract_feat(self, frames: Tensor, text: str) -> Dict[str, Tensor]:
        """Prompts of one clip.

        Args:
            frames (Tensor): (T, 3, S, S). text (str): the sentence.

        Returns:
            dict: ``sparse`` (T, C), ``mask_prior`` (T, 1, g, g), ``global_feat``
            (1, T, g*g, C), ``text_feats`` (T, L, C), ``sentence_scores`` (T,).
        """
        enc = self.multimodal_encoder
        t = len(frames)
        tok = self.tokenize(text, frames.device)
        size = (enc.img_size, ) * 2
        images = frames if frames.shape[-2:] == size else F.interpolate(
            frames, size=size, mode='bilinear', align_corners=False, antialias=True)
        out = enc(images, tok['input_ids'].expand(t, -1), tok['padding'].expand(t, -1))
        g = enc.grid_size
        cls, patches, words = out[:, 0], out[:, 1:1 + g * g], out[:, 1 + g * g:]
        prior = self.mask_prior_generator(patches[None], cls[None], g)
        text_feats = self.text_proj(words)
        return dict(
            sparse=self.sparse_prompt_mlp(cls),
            mask_prior=prior['mask_prior'][0],
            global_feat=prior['global_feat'],
            text_feats=text_feats,
            sentence_scores=self.sentence_score(text_feats[:, 0])[:, 0])

    def forward_clip(self, frames: Tensor, text: str) -> Dict[str, Tensor]:
        """One clip (T, 3, S, S) -> ``masks`` (T, S/4, S/4) logits, ``object_scores`` (T,),
        ``sentence_scores`` (T,)."""
        feats = self.extract_feat(frames, text)
        out = self.sam2.track(frames, feats['sparse'], feats['mask_prior'], feats['global_feat'],
                              feats['text_feats'])
        out['sentence_scores'] = feats['sentence_scores']
        return out

    def forward_clips(self, batch_inputs: Tensor,
                      batch_data_samples: List[TrackDataSample]) -> List[Dict[str, Tensor]]:
        """N clips, one after the other (SAM 2 tracks one video at a time): ``masks``
        (N, T, S/4, S/4), ``object_scores`` (N, T), ``sentence_scores`` (N, T)."""
        outs = [
            self.forward_clip(frames, clip_text(sample))
            for frames, sample in zip(batch_inputs, batch_data_samples)
        ]
        return [{k: torch.stack([o[k] for o in outs]) for k in outs[0]}]

    # ------------------------------------------------------------------ training
    def loss(self, batch_inputs: Tensor, batch_data_samples: List[TrackDataSample]) -> dict:
        """``loss_focal``, ``loss_dice``, ``loss_sim`` of N clips (N, T, 3, S, S)."""
        out = self.forward_clips(batch_inputs, batch_data_samples)[0]
        return self.bbox_head.loss_by_feat(out, batch_data_samples, batch_inputs.shape[-2:])

    # ------------------------------------------------------------------ inference
    # predict_clip only slices ``frames``: the inferencer may pass its lazy reader, so that with
    # test_cfg.chunk_size one chunk of frames is in memory at a time
    reads_clips_lazily = True

    @torch.no_grad()
    def predict_clip(self, frames: Tensor, frame_samples: list, text: str) -> List[InstanceData]:
        """The whole video in one pass, or independent chunks of ``test_cfg.chunk_size``
        frames (each chunk starts SAM 2's memory afresh, as the official MeViS inference).
        ``frames``: (T, 3, S, S), or a lazy reader whose slices are such tensors."""
        chunk = self.test_cfg['chunk_size'] or len(frames)
        results = []
        for start in range(0, len(frames), chunk):
            out = self.forward_clip(frames[start:start + chunk], text)
            results.extend(
                self.bbox_head.predict_by_feat(out['masks'], out['object_scores'],
                                               frame_samples[start:start + chunk]))
        return results

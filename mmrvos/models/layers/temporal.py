"""Object-consistent temporal enhancer: memory-augmented tracker + cross-modal temporal decoder."""
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from scipy.optimize import linear_sum_assignment
from torch import Tensor


@MODELS.register_module()
class MemoryTracker(nn.Module):
    """Memory-augmented Hungarian tracker (no parameters).

    Memory ``m_0`` = frame-0 objects. For every frame ``t > 0``, the frame's objects are matched
    to the memory by Hungarian matching on ``1 - cosine`` (scipy ``linear_sum_assignment``),
    re-ordered into track order, and the memory is updated with a text-gated momentum:
    ``m_t = (1 - alpha * c) * m_{t-1} + alpha * c * o_t``.

    Args:
        alpha (float): momentum. Defaults to 0.1.
        gate (str): how ``c`` is computed. ``'code'`` (official code, default): max dot product of
            the object with the text tokens, min-max normalised over the queries. ``'paper'``:
            cosine similarity of the object with the sentence feature ``f_cls^t``.
    """

    def __init__(self, alpha: float = 0.1, gate: str = 'code') -> None:
        super().__init__()
        if gate not in ('code', 'paper'):
            raise ValueError(f"gate must be 'code' or 'paper', got {gate!r}")
        self.alpha = alpha
        self.gate = gate

    @staticmethod
    def match(memory: Tensor, objects: Tensor) -> Tensor:
        """Hungarian matching of one frame's objects to the memory.

        Args:
            memory (Tensor): (B, Q, C). objects (Tensor): (B, Q, C).

        Returns:
            Tensor: (B, Q) long, ``objects[b, idx[b, k]]`` continues track ``k``.
        """
        cost = 1.0 - torch.einsum('bqc,bkc->bqk', F.normalize(memory.float(), dim=-1),
                                  F.normalize(objects.float(), dim=-1))
        cost = cost.detach().cpu().numpy()
        index = np.stack([linear_sum_assignment(c)[1] for c in cost])
        return torch.as_tensor(index, dtype=torch.long, device=memory.device)

    def confidence(self, objects: Tensor, text: Tensor, text_mask: Optional[Tensor],
                   sentence: Tensor) -> Tensor:
        """Gate ``c`` (B, Q, 1) of the memory update.

        Args:
            objects (Tensor): (B, Q, C) track-ordered objects of frame t.
            text (Tensor): (B, L, C) text token features of frame t.
            text_mask (Tensor, optional): (B, L) True on valid tokens.
            sentence (Tensor): (B, C) sentence feature of frame t.
        """
        if self.gate == 'paper':
            return F.cosine_similarity(objects, sentence[:, None], dim=-1)[..., None]
        sim = torch.einsum('bqc,blc->bql', objects, text)
        if text_mask is not None:
            sim = sim.masked_fill(~text_mask[:, None], float('-inf'))
        conf = sim.max(-1).values
        lo, hi = conf.min(1, keepdim=True).values, conf.max(1, keepdim=True).values
        return ((conf - lo) / (hi - lo).clamp_min(1e-6))[..., None]

    @torch.no_grad()
    def forward(self, objects: Tensor, text: Tensor, text_mask: Optional[Tensor],
                sentence: Tensor) -> Tensor:
        """Track the queries of a clip.

        Args:
            objects (Tensor): (N, T, Q, C) per-frame object embeddings.
            text (Tensor): (N, T, L, C) per-frame text features.
            text_mask (Tensor, optional): (N, T, L) True on valid tokens.
            sentence (Tensor): (N, T, C) per-frame sentence features.

        Returns:
            Tensor: (N, T, Q) long permutation; ``objects[n, t, perm[n, t]]`` is in track order
            (frame 0 keeps its order).
        """
        num_frames = objects.shape[1]
        perms = [torch.arange(objects.shape[2], device=objects.device).expand(
            objects.shape[0], -1)]
        memory = objects[:, 0]
        for t in range(1, num_frames):
            idx = self.match(memory, objects[:, t])
            sorted_t = torch.gather(objects[:, t], 1, idx[..., None].expand_as(memory))
            mask_t = None if text_mask is None else text_mask[:, t]
            c = self.alpha * self.confidence(sorted_t, text[:, t], mask_t, sentence[:, t])
            memory = (1 - c) * memory + c * sorted_t
            perms.append(idx)
        return torch.stack(perms, 1)


class TemporalBlock(nn.Module):
    """One cross-modal temporal block.

    Temporal self-attention along T within each track, then the sentence features (as
    queries) attend to the track (``nn.TransformerDecoderLayer``: self-attn, cross-attn, FFN).

    Args:
        embed_dims (int): C. num_heads (int): heads. dropout (float): dropout.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, dropout: float = 0.0) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout,
                                               batch_first=True)
        self.norm = nn.LayerNorm(embed_dims)
        self.cross = nn.TransformerDecoderLayer(embed_dims, num_heads,
                                                dim_feedforward=embed_dims * 8,
                                                dropout=dropout, batch_first=True)

    def forward(self, tracks: Tensor, sentence: Tensor) -> Tuple[Tensor, Tensor]:
        """Args: tracks (B', T, C), sentence (B', T, C). Returns updated (tracks, sentence)."""
        tracks = self.norm(tracks + self.self_attn(tracks, tracks, tracks,
                                                   need_weights=False)[0])
        sentence = self.cross(sentence, tracks)
        return tracks, sentence


@MODELS.register_module()
class CrossModalTemporalDecoder(BaseModule):
    """Cross-modal temporal decoder: ``num_layers`` :class:`TemporalBlock` s; after each block
    the sentence stream is added back to the frame-wise embeddings (``LayerNorm(hs + tgt)``).

    Every track is processed independently, so the decoder is equivariant to permutations of
    the tracks.

    Args:
        embed_dims (int): C. num_heads (int): heads. num_layers (int): blocks (3; A2D: 1).
        dropout (float): dropout.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_layers: int = 3,
                 dropout: float = 0.0, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.blocks = nn.ModuleList(
            [TemporalBlock(embed_dims, num_heads, dropout) for _ in range(num_layers)])
        self.norms = nn.ModuleList([nn.LayerNorm(embed_dims) for _ in range(num_layers)])

    def forward(self, objects: Tensor, sentence: Tensor) -> Tensor:
        """Refine track-ordered objects.

        Args:
            objects (Tensor): (N, T, Q, C) track-ordered object embeddings.
            sentence (Tensor): (N, T, C) per-frame sentence features.

        Returns:
            Tensor: (N, T, Q, C) refined embeddings.
        """
        n, t, q, c = objects.shape
        tracks = objects.permute(0, 2, 1, 3).reshape(n * q, t, c)
        tgt = sentence[:, None].expand(n, q, t, c).reshape(n * q, t, c)
        for block, norm in zip(self.blocks, self.norms):
            tracks, tgt = block(tracks, tgt)
            tracks = norm(tracks + tgt)
        return tracks.reshape(n, q, t, c).permute(0, 2, 1, 3)


@MODELS.register_module()
class TemporalEnhancer(BaseModule):
    """Object-consistent temporal enhancer = :class:`MemoryTracker` + temporal decoder.

    Args:
        tracker (dict, optional): tracker config; None disables tracking (ablation).
        temporal_decoder (dict, optional): decoder config; None disables it (ablation).
    """

    def __init__(self, tracker: Optional[dict] = dict(type='MemoryTracker'),
                 temporal_decoder: Optional[dict] = dict(type='CrossModalTemporalDecoder'),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.tracker = MODELS.build(tracker) if tracker else None
        self.temporal_decoder = MODELS.build(temporal_decoder) if temporal_decoder else None

    def track(self, objects: Tensor, text: Tensor, text_mask: Optional[Tensor],
              sentence: Tensor) -> Tensor:
        """(N, T, Q) permutation into track order (identity without a tracker)."""
        if self.tracker is None or objects.shape[1] == 1:
            n, t, q = objects.shape[:3]
            return torch.arange(q, device=objects.device).expand(n, t, q)
        return self.tracker(objects, text, text_mask, sentence)

    def refine(self, objects: Tensor, sentence: Tensor) -> Tensor:
        """Temporal decoding of (N, T, Q, C) track-ordered objects (identity when disabled or T=1)."""
        if self.temporal_decoder is None or objects.shape[1] == 1:
            return objects
        return self.temporal_decoder(objects, sentence)

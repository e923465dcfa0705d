"""Object-consistent temporal enhancer: memory-augmented tracker + cross-modal temporal decoder."""
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.layers.transformer.utils import MLP
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
        box_weight (float): weight of a position term in the matching cost: ``box_weight`` x
            L1 distance between the box centres (normalised coordinates) of the object and of
            the track's last matched box. 0 (default, as the official code) matches on
            embeddings only; a positive weight keeps apart look-alike objects, whose
            embeddings are nearly equal.
    """

    def __init__(self, alpha: float = 0.1, gate: str = 'code', box_weight: float = 0.0) -> None:
        super().__init__()
        if gate not in ('code', 'paper'):
            raise ValueError(f"gate must be 'code' or 'paper', got {gate!r}")
        if box_weight < 0:
            raise ValueError(f'box_weight must be >= 0, got {box_weight}')
        self.alpha = alpha
        self.gate = gate
        self.box_weight = float(box_weight)

    @staticmethod
    def match(memory: Tensor,
              objects: Tensor,
              memory_boxes: Optional[Tensor] = None,
              boxes: Optional[Tensor] = None,
              box_weight: float = 0.0) -> Tensor:
        """Hungarian matching of one frame's objects to the memory.

        Cost = ``1 - cos(memory, object)`` (+ ``box_weight`` x L1 distance of the box centres
        when boxes are given).

        Args:
            memory (Tensor): (B, Q, C). objects (Tensor): (B, Q, C).
            memory_boxes (Tensor, optional): (B, Q, 4) cxcywh of the tracks' last boxes.
            boxes (Tensor, optional): (B, Q, 4) cxcywh of the frame's objects.
            box_weight (float): weight of the centre distance.

        Returns:
            Tensor: (B, Q) long, ``objects[b, idx[b, k]]`` continues track ``k``.
        """
        cost = 1.0 - torch.einsum('bqc,bkc->bqk', F.normalize(memory.float(), dim=-1),
                                  F.normalize(objects.float(), dim=-1))
        if box_weight > 0 and memory_boxes is not None and boxes is not None:
            cost = cost + box_weight * torch.cdist(
                memory_boxes[..., :2].float(), boxes[..., :2].float(), p=1)
        cost = cost.detach().float().cpu().numpy()
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

    def start(self, objects: Tensor, boxes: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Tracker state after the first frame, which keeps its query order.

        Args:
            objects (Tensor): (B, Q, C) the first frame's object embeddings.
            boxes (Tensor, optional): (B, Q, 4) cxcywh boxes; needed when ``box_weight > 0``.

        Returns:
            dict: ``memory`` (B, Q, C) and ``boxes`` (B, Q, 4, the tracks' last boxes, only
            with ``box_weight > 0``). Its size does not depend on how many frames follow.
        """
        state = dict(memory=objects)
        if self.box_weight > 0:
            if boxes is None:
                raise ValueError('MemoryTracker(box_weight>0) needs the boxes of the queries')
            state['boxes'] = boxes
        return state

    @torch.no_grad()
    def step(self,
             state: Dict[str, Tensor],
             objects: Tensor,
             text: Tensor,
             text_mask: Optional[Tensor],
             sentence: Tensor,
             boxes: Optional[Tensor] = None) -> Tensor:
        """Match one frame to the memory and update ``state`` (from :meth:`start`) in place.

        Args:
            objects (Tensor): (B, Q, C) the frame's object embeddings.
            text (Tensor): (B, L, C). text_mask (Tensor, optional): (B, L).
            sentence (Tensor): (B, C). boxes (Tensor, optional): (B, Q, 4) cxcywh.

        Returns:
            Tensor: (B, Q) long, ``objects[b, idx[b, k]]`` continues track ``k``.
        """
        use_boxes = 'boxes' in state
        if use_boxes and boxes is None:
            raise ValueError('MemoryTracker(box_weight>0) needs the boxes of the queries')
        memory = state['memory']
        idx = self.match(memory, objects, state.get('boxes'), boxes if use_boxes else None,
                         self.box_weight)
        sorted_t = torch.gather(objects, 1, idx[..., None].expand_as(memory))
        if use_boxes:
            state['boxes'] = torch.gather(boxes, 1, idx[..., None].expand(-1, -1, 4))
        c = self.alpha * self.confidence(sorted_t, text, text_mask, sentence)
        state['memory'] = (1 - c) * memory + c * sorted_t
        return idx

    @torch.no_grad()
    def forward(self,
                objects: Tensor,
                text: Tensor,
                text_mask: Optional[Tensor],
                sentence: Tensor,
                boxes: Optional[Tensor] = None) -> Tensor:
        """Track the queries of a clip (:meth:`start`, then :meth:`step` frame by frame; a
        stream calls those itself, see :class:`~mmrvos.apis.RVOSStream`).

        Args:
            objects (Tensor): (N, T, Q, C) per-frame object embeddings.
            text (Tensor): (N, T, L, C) per-frame text features.
            text_mask (Tensor, optional): (N, T, L) True on valid tokens.
            sentence (Tensor): (N, T, C) per-frame sentence features.
            boxes (Tensor, optional): (N, T, Q, 4) cxcywh boxes; used when ``box_weight > 0``.

        Returns:
            Tensor: (N, T, Q) long permutation; ``objects[n, t, perm[n, t]]`` is in track order
            (frame 0 keeps its order).
        """
        num_frames = objects.shape[1]
        perms = [torch.arange(objects.shape[2], device=objects.device).expand(objects.shape[0], -1)]
        use_boxes = self.box_weight > 0
        if use_boxes and boxes is None:
            raise ValueError('MemoryTracker(box_weight>0) needs the boxes of the queries')
        state = self.start(objects[:, 0], boxes[:, 0] if use_boxes else None)
        for t in range(1, num_frames):
            perms.append(
                self.step(state, objects[:, t], text[:, t],
                          None if text_mask is None else text_mask[:, t], sentence[:, t],
                          boxes[:, t] if use_boxes else None))
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
        self.self_attn = nn.MultiheadAttention(
            embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(embed_dims)
        self.cross = nn.TransformerDecoderLayer(
            embed_dims,
            num_heads,
            dim_feedforward=embed_dims * 8,
            dropout=dropout,
            batch_first=True)

    def forward(self, tracks: Tensor, sentence: Tensor) -> Tuple[Tensor, Tensor]:
        """Args: tracks (B', T, C), sentence (B', T, C). Returns updated (tracks, sentence)."""
        tracks = self.norm(tracks + self.self_attn(tracks, tracks, tracks, need_weights=False)[0])
        sentence = self.cross(sentence, tracks)
        return tracks, sentence


def track_velocities(boxes: Tensor, times: Tensor) -> Tensor:
    """Backward and forward finite differences of track-ordered boxes over time.

    Args:
        boxes (Tensor): (N, T, Q, 4) cxcywh boxes in track order.
        times (Tensor): (N, T) frame times (e.g. frame indices in the video), increasing or
            decreasing; repeated times give a zero difference.

    Returns:
        Tensor: (N, T, Q, 8): ``[(b_t - b_{t-1}) / dt, (b_{t+1} - b_t) / dt]``; the missing
        neighbour of the first / last frame repeats the other difference; zeros when T = 1.
    """
    n, t, q, _ = boxes.shape
    if t == 1:
        return boxes.new_zeros(n, t, q, 8)
    diff = boxes[:, 1:] - boxes[:, :-1]  # (N, T-1, Q, 4)
    dt = (times[:, 1:] - times[:, :-1]).to(boxes.dtype)[..., None, None]
    moved = dt != 0
    step = torch.where(moved, diff / torch.where(moved, dt, torch.ones_like(dt)), 0.0)
    backward = torch.cat([step[:, :1], step], 1)
    forward = torch.cat([step, step[:, -1:]], 1)
    return torch.cat([backward, forward], -1)


@MODELS.register_module()
class CrossModalTemporalDecoder(BaseModule):
    """Cross-modal temporal decoder: ``num_layers`` :class:`TemporalBlock` s; after each block
    the sentence stream is added back to the frame-wise embeddings (``LayerNorm(hs + tgt)``).

    Every track is processed independently, so the decoder is equivariant to permutations of
    the tracks. As in the official code, the blocks see neither the frame order nor the boxes,
    so on their own they cannot tell "moving up" from "moving down" between two look-alike
    objects. ``motion_embed=True`` adds to every track token an embedding of its trajectory:
    its box on that frame and the box velocity (:func:`track_velocities`, scaled by
    ``velocity_scale``), 12 numbers, through a 2-layer MLP whose last layer starts at zero, so
    an initialised model equals the official decoder.

    Args:
        embed_dims (int): C. num_heads (int): heads. num_layers (int): blocks (3; A2D: 1).
        dropout (float): dropout.
        motion_embed (bool): add the trajectory (box + velocity) embedding. Defaults to
            False (official).
        velocity_scale (float): multiplier of the velocities (normalised box units per frame)
            before the MLP. Defaults to 20.
        zero_init_gate (bool): return ``x + g * (blocks(x) - x)``, ``x`` = the embeddings
            (plus the trajectory embedding), with a learnable scalar ``g`` that starts at 0,
            so that a model trained on single frames (where the decoder is idle) keeps its
            predictions when clip training starts. Defaults to False (official: the blocks'
            output replaces the embeddings).
        tracks_per_pass (int, optional): without gradients (inference), run the blocks over
            this many tracks at a time: the tracks are independent, so the result is the
            same, while the blocks' temporaries (attention and FFN over all T frames) shrink
            from Q tracks to this many, which keeps the memory of a long video low. None: all
            at once. Defaults to 4.
        frames_per_pass (int): without gradients, a pass also holds at most this many
            track-frames (``tracks_per_pass`` x T), down to one track: a video longer than
            ``frames_per_pass / tracks_per_pass`` frames (256 by default) runs fewer tracks
            per pass, so the blocks' temporaries stop growing with Q x T. Defaults to 1024.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 num_layers: int = 3,
                 dropout: float = 0.0,
                 motion_embed: bool = False,
                 velocity_scale: float = 20.0,
                 zero_init_gate: bool = False,
                 tracks_per_pass: Optional[int] = 4,
                 frames_per_pass: int = 1024,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if tracks_per_pass is not None and tracks_per_pass < 1:
            raise ValueError(f'tracks_per_pass must be None or >= 1, got {tracks_per_pass}')
        if frames_per_pass < 1:
            raise ValueError(f'frames_per_pass must be >= 1, got {frames_per_pass}')
        self.tracks_per_pass = tracks_per_pass
        self.frames_per_pass = frames_per_pass
        self.blocks = nn.ModuleList(
            [TemporalBlock(embed_dims, num_heads, dropout) for _ in range(num_layers)])
        self.norms = nn.ModuleList([nn.LayerNorm(embed_dims) for _ in range(num_layers)])
        self.velocity_scale = velocity_scale
        # mmdet's MLP: Linear-ReLU-Linear
        self.motion_mlp = MLP(12, embed_dims, embed_dims, 2) if motion_embed else None
        self.gate = nn.Parameter(torch.zeros(1)) if zero_init_gate else None
        self._init_zero_parts()

    def _init_zero_parts(self) -> None:
        if self.motion_mlp is not None:
            nn.init.zeros_(self.motion_mlp.layers[-1].weight)
            nn.init.zeros_(self.motion_mlp.layers[-1].bias)
        if self.gate is not None:
            nn.init.zeros_(self.gate)

    def init_weights(self) -> None:
        super().init_weights()
        self._init_zero_parts()

    def _blocks(self, tracks: Tensor, tgt: Tensor) -> Tensor:
        """The blocks over (K, T, C) tracks with their (K, T, C) sentence stream."""
        for block, norm in zip(self.blocks, self.norms):
            tracks, tgt = block(tracks, tgt)
            tracks = norm(tracks + tgt)
        return tracks

    def forward(self,
                objects: Tensor,
                sentence: Tensor,
                boxes: Optional[Tensor] = None,
                times: Optional[Tensor] = None) -> Tensor:
        """Refine track-ordered objects.

        Args:
            objects (Tensor): (N, T, Q, C) track-ordered object embeddings.
            sentence (Tensor): (N, T, C) per-frame sentence features.
            boxes (Tensor, optional): (N, T, Q, 4) track-ordered cxcywh boxes (needed with
                ``motion_embed``; gradients are not propagated into them).
            times (Tensor, optional): (N, T) frame times; defaults to 0..T-1.

        Returns:
            Tensor: (N, T, Q, C) refined embeddings.
        """
        n, t, q, c = objects.shape
        if self.motion_mlp is not None:
            if boxes is None:
                raise ValueError('CrossModalTemporalDecoder(motion_embed=True) needs the '
                                 'track-ordered boxes')
            if times is None:
                times = torch.arange(t, device=objects.device).expand(n, t)
            boxes = boxes.detach()
            velocity = track_velocities(boxes, times) * self.velocity_scale
            trajectory = torch.cat([boxes, velocity], -1).to(objects.dtype)
            embedding = self.motion_mlp(trajectory)
            if not torch.is_grad_enabled() and embedding.dtype == torch.promote_types(
                    embedding.dtype, objects.dtype):
                objects = embedding.add_(objects)  # the same sum, without another copy
            else:
                objects = objects + embedding
        step = self.tracks_per_pass
        if step is not None and not torch.is_grad_enabled():
            step = max(1, min(step, self.frames_per_pass // t))
            if step < n * q:
                # with the trajectory embedding the inputs are a tensor of ours
                return self._forward_in_passes(
                    objects, sentence, step, in_place=self.motion_mlp is not None)
        inputs = objects
        tracks = objects.permute(0, 2, 1, 3).reshape(n * q, t, c)
        tgt = sentence[:, None].expand(n, q, t, c).reshape(n * q, t, c)
        tracks = self._blocks(tracks, tgt)
        out = tracks.reshape(n, q, t, c).permute(0, 2, 1, 3)
        if self.gate is not None:
            out = inputs + self.gate * (out - inputs)
        return out

    def _forward_in_passes(self,
                           inputs: Tensor,
                           sentence: Tensor,
                           step: int,
                           in_place: bool = False) -> Tensor:
        """:meth:`forward` without gradients, ``step`` independent tracks at a time, each pass
        written into the (N, T, Q, C) output as it is done (into ``inputs`` itself with
        ``in_place``: each pass reads its tracks before it writes them). The blocks get what
        they get all at once (slices of the same track-major tensors, views for one clip),
        while a long video's memory holds no track-major copy of the outputs, no
        concatenation of them and no full-size temporaries of the gate's blend."""
        n, t, q, c = inputs.shape
        tracks = inputs.permute(0, 2, 1, 3).reshape(n * q, t, c)
        tgt = sentence[:, None].expand(n, q, t, c).reshape(n * q, t, c)
        out = inputs if in_place else torch.empty_like(inputs)
        track_major = out.permute(0, 2, 1, 3)  # (N, Q, T, C) view of the output
        for i in range(0, n * q, step):
            x = tracks[i:i + step]
            y = self._blocks(x, tgt[i:i + step])
            if self.gate is not None:
                y = x + self.gate * (y - x)
            rows = torch.arange(i, i + len(x), device=inputs.device)
            track_major[rows // q, rows % q] = y
        return out


@MODELS.register_module()
class TemporalEnhancer(BaseModule):
    """Object-consistent temporal enhancer = :class:`MemoryTracker` + temporal decoder.

    Args:
        tracker (dict, optional): tracker config; None disables tracking (ablation).
        temporal_decoder (dict, optional): decoder config; None disables it (ablation).
    """

    def __init__(self,
                 tracker: Optional[dict] = dict(type='MemoryTracker'),
                 temporal_decoder: Optional[dict] = dict(type='CrossModalTemporalDecoder'),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.tracker = MODELS.build(tracker) if tracker else None
        self.temporal_decoder = MODELS.build(temporal_decoder) if temporal_decoder else None

    def track(self,
              objects: Tensor,
              text: Tensor,
              text_mask: Optional[Tensor],
              sentence: Tensor,
              boxes: Optional[Tensor] = None) -> Tensor:
        """(N, T, Q) permutation into track order (identity without a tracker).

        ``boxes`` (N, T, Q, 4) feed the tracker's optional position term."""
        if self.tracker is None or objects.shape[1] == 1:
            n, t, q = objects.shape[:3]
            return torch.arange(q, device=objects.device).expand(n, t, q)
        return self.tracker(objects, text, text_mask, sentence, boxes)

    def refine(self,
               objects: Tensor,
               sentence: Tensor,
               boxes: Optional[Tensor] = None,
               times: Optional[Tensor] = None,
               single_frame: bool = False) -> Tensor:
        """Temporal decoding of (N, T, Q, C) track-ordered objects (identity when disabled,
        and for T=1 unless ``single_frame``: the official code skips it for 1-frame training
        clips but runs it on a 1-frame video at inference); ``boxes`` (N, T, Q, 4) and
        ``times`` (N, T) feed the optional motion embedding."""
        if self.temporal_decoder is None or (objects.shape[1] == 1 and not single_frame):
            return objects
        return self.temporal_decoder(objects, sentence, boxes, times)

"""``RVOSStream``: online referring segmentation, one frame in, one mask per expression out.

Offline inference (:meth:`ReferDINO.predict_video`) sees the whole video before it writes a
mask: the temporal decoder attends over every frame and the query sequence is chosen by its
mean score over the video. A stream has only the frames seen so far, and keeps a bounded
state per expression:

* the **memory tracker**'s memory (:meth:`MemoryTracker.start` / :meth:`MemoryTracker.step`),
  carried from frame to frame exactly as offline (the tracker is causal);
* the last ``window`` frames' track-ordered queries, boxes and sentence features: the
  **cross-modal temporal decoder** attends over them and the current frame's refined queries
  are kept (offline: over the whole video, future frames included);
* every track's **running score**: the sum of its scores since the first frame (or over the
  last ``score_window`` frames); the head's rule (``test_cfg.select``) picks the track(s) from
  the running mean (offline: the mean over the whole video).

What equals offline: with ``window > t`` the per-track logits, boxes and refined queries of
frame ``t`` are those of the *last* frame of an offline run on the video cut at ``t`` (the
same tracker, the temporal decoder over the same frames). What cannot: offline, every frame
also attends to later frames, and the track is chosen by the mean of those future-aware
scores; the stream averages each frame's score as it was when that frame came. Where the
temporal decoder is idle (disabled, or at the toy configs' initialisation: gate 0) the scores
of a frame do not depend on the others, and frame ``t`` of the stream is the last frame of the
offline run on the video cut at ``t``, masks included. docs/en/streaming.md measures what the
window costs.

Per frame the backbone runs once for all expressions, then the cross-modal encoder, decoder,
temporal decoder and mask decoder once per expression; the text is encoded once per stream.
Memory and time per frame do not depend on how many frames came before.

Example::

    >>> model = init_rvos_model('configs/referdino/referdino_tiny_1xb3-ft_toy-rvos.py', ckpt)
    >>> stream = RVOSStream(model, ['the red circle', 'the blue square'], window=6)
    >>> for frame in frames:  # (H, W, 3) uint8 BGR arrays or image paths
    ...     red, blue = stream.step(frame)
    ...     red['mask'].shape, red['box'], red['score']  # (H, W) bool, (4,) xyxy, float
"""
import os.path as osp
from collections import deque
from typing import Deque, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from mmrvos.fileio import check_image_complete, image_size
from .inference import build_video_pipeline, check_texts, memory_efficient_attention
from .video_pipeline import VideoTestPipeline

#: the temporal window when neither the call nor ``test_cfg.stream_window`` gives one
DEFAULT_STREAM_WINDOW = 6
FrameLike = Union[np.ndarray, str]


def _positive_int(value, name: str, allow_none: bool = False) -> Optional[int]:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f'{name} must be a positive integer, got {value!r}')
    return int(value)


class _ExpressionState:
    """What a stream keeps of one expression between frames (bounded; see
    :meth:`RVOSStream.state_nbytes`).

    Attributes:
        tracker (dict | None): :meth:`MemoryTracker.start` state (memory (1, Q, C), boxes).
        window (deque): the last W frames' ``(hidden (1, Q, C), ref (1, Q, 4), sentence
            (1, C), time)``, track-ordered.
        score_sum (Tensor | None): (Q,) float64 sum of every track's scores.
        scores (deque): the last ``score_window`` frames' (Q,) scores (with a score window).
        count (int): frames in ``score_sum``.
    """

    def __init__(self, window: int, score_window: Optional[int]) -> None:
        self.tracker: Optional[Dict[str, Tensor]] = None
        self.window: Deque[Tuple[Tensor, Tensor, Tensor, int]] = deque(maxlen=window)
        self.score_sum: Optional[Tensor] = None
        self.scores: Deque[Tensor] = deque(maxlen=score_window or 1)
        self.count = 0

    def tensors(self) -> List[Tensor]:
        out = list((self.tracker or {}).values())
        for hidden, ref, sentence, _ in self.window:
            out += [hidden, ref, sentence]
        out += list(self.scores)
        if self.score_sum is not None:
            out.append(self.score_sum)
        return out


class RVOSStream:
    """Segment referring expressions in a video given one frame at a time.

    Args:
        model (nn.Module): a ReferDINO-family model (:class:`ReferDINO`:
            ``extract_frame_feats``, ``encode_frames``, ``decode_frames``,
            ``last_layer_predictions``, ``predict_frames``), e.g. from
            :func:`~mmrvos.apis.init_rvos_model`, in eval mode.
        texts (str | list[str]): the E referring expressions (encoded once, here).
        window (int, optional): frames the temporal decoder attends over (the current one and
            the W - 1 before it). Default: the model's ``test_cfg.stream_window``, else
            :data:`DEFAULT_STREAM_WINDOW` (6).
        score_window (int, optional): rank the tracks by their mean score over the last this
            many frames; None (default): over every frame so far (the offline rule applied to
            the frames seen).
        pipeline (VideoTestPipeline, optional): the frames' test pipeline; default: the
            model's config's (``model.cfg``, see :func:`build_video_pipeline`).
        scale (tuple[int, int], optional): (long, short) working resolution replacing the
            pipeline's resize (when ``pipeline`` is not given).
        video_id (str): the video's name in the frames' metainfo.

    Raises:
        ValueError: no or an empty expression, a bad window, a model that cannot stream.
    """

    def __init__(self,
                 model: torch.nn.Module,
                 texts: Union[str, Sequence[str]],
                 window: Optional[int] = None,
                 score_window: Optional[int] = None,
                 pipeline: Optional[VideoTestPipeline] = None,
                 scale: Optional[Tuple[int, int]] = None,
                 video_id: str = 'stream') -> None:
        needed = ('extract_frame_feats', 'encode_frames', 'decode_frames', 'last_layer_predictions',
                  'predict_frames', 'encode_text')
        missing = [n for n in needed if not callable(getattr(model, n, None))]
        if missing:
            raise ValueError(f'RVOSStream needs a ReferDINO-family model; '
                             f'{type(model).__name__} lacks {", ".join(missing)}')
        self.texts = check_texts(texts)
        self.model = model
        cfg = model.test_cfg or {}
        self.window = _positive_int(
            window if window is not None else cfg.get('stream_window', DEFAULT_STREAM_WINDOW),
            'window' if window is not None else 'test_cfg.stream_window')
        self.score_window = _positive_int(score_window, 'score_window', allow_none=True)
        self.pipeline = pipeline or build_video_pipeline(getattr(model, 'cfg', None), scale)
        self.video_id = video_id
        self.device = next(model.parameters()).device
        with torch.no_grad():
            self.text_dicts = [model.encode_text([t]) for t in self.texts]
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget every frame: the next :meth:`step` starts a new video (of any size)."""
        self.frames_seen = 0
        self.frame_size: Optional[Tuple[int, int]] = None  # (W, H) of the first frame
        self._states = [_ExpressionState(self.window, self.score_window) for _ in self.texts]
        #: per expression, the last frame's (Q,) logits of every track (track order)
        self.last_logits: List[Optional[Tensor]] = [None] * len(self.texts)

    def state_nbytes(self) -> int:
        """Bytes of every tensor the stream keeps between frames (all expressions): it does
        not grow with the number of frames once ``window`` frames were seen."""
        return sum(t.numel() * t.element_size() for s in self._states for t in s.tensors())

    # ------------------------------------------------------------------ input
    def _check_frame(self, frame: FrameLike, name: str) -> Tuple[dict, Tuple[int, int]]:
        """The pipeline input of one frame and its (W, H); refuses a bad frame (naming it)
        before anything of the stream changes."""
        where = f'frame {name} (index {self.frames_seen})'
        if isinstance(frame, str):
            if not osp.isfile(frame):
                raise FileNotFoundError(f'{where}: no such image file {frame}')
            check_image_complete(frame)  # OSError naming the file when truncated
            size = image_size(frame)
            item = dict(img_path=frame)
        elif frame is None:
            raise ValueError(f'{where}: no image (None; a camera or video that stopped '
                             'delivering frames returns None)')
        elif not isinstance(frame, np.ndarray):
            raise ValueError(f'{where}: expected an (H, W, 3) uint8 BGR array or an image '
                             f'path, got {type(frame).__name__}')
        else:
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 \
                    or frame.shape[0] < 1 or frame.shape[1] < 1:
                raise ValueError(f'{where}: expected an (H, W, 3) uint8 BGR array, got '
                                 f'{frame.dtype} of shape {frame.shape}')
            size = (frame.shape[1], frame.shape[0])
            item = dict(img=frame)
        if self.frame_size is not None and size != self.frame_size:
            raise ValueError(
                f'{where}: size {size[0]}x{size[1]} differs from the stream\'s first frame '
                f'({self.frame_size[0]}x{self.frame_size[1]}); all frames of a stream must '
                'have one size (reset() starts a new video)')
        item.update(frame_id=name, frame_index=self.frames_seen)
        return item, size

    def _preprocess(self, item: dict, size: Tuple[int, int]) -> Tuple[Tensor, object]:
        """(1, 3, H', W') normalised, padded input and its ``DetDataSample``."""
        packed = self.pipeline([item], self.video_id, 0)
        data = self.model.data_preprocessor(
            dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]), False)
        sample = data['data_samples'][0].video_data_samples[0]
        ori = tuple(int(s) for s in sample.metainfo['ori_shape'][:2])
        if ori != (size[1], size[0]):
            raise ValueError(f'frame {item["frame_id"]}: decoded size {ori[1]}x{ori[0]} '
                             f'differs from its header {size[0]}x{size[1]}')
        return data['inputs'][0].to(self.device), sample

    # ------------------------------------------------------------------ model
    def _autocast(self):
        bf16 = (self.model.test_cfg or {}).get('autocast') == 'bf16'
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16)

    def _track(self, state: _ExpressionState, hidden: Tensor, ref: Tensor, text: Tensor,
               tmask: Tensor, time: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Tracker step + temporal decoder over the window + head, for one expression.

        Args:
            hidden (Tensor): (1, Q, C) the frame's last-layer queries. ref (Tensor): (1, Q, 4).
            text (Tensor): (1, L, C) fused text. tmask (Tensor): (1, L).
            time (int): the frame's index in the video.

        Returns:
            tuple: refined track-ordered queries (1, Q, C), logits (1, Q), boxes (1, Q, 4),
            mask-decoder boxes (1, Q, 4).
        """
        temporal = self.model.temporal
        sentence = text[:, 0]
        tracker = temporal.tracker if temporal is not None else None
        if tracker is not None:
            if state.tracker is None:  # the first frame keeps its order
                state.tracker = tracker.start(hidden.clone(),
                                              ref.clone() if tracker.box_weight > 0 else None)
            else:
                perm = tracker.step(state.tracker, hidden, text, tmask, sentence, ref)
                hidden = torch.gather(hidden, 1, perm[..., None].expand_as(hidden))
                ref = torch.gather(ref, 1, perm[..., None].expand_as(ref))
        refined = hidden
        if temporal is not None:
            state.window.append((hidden.clone(), ref.clone(), sentence.clone(), time))
            hs = torch.stack([w[0] for w in state.window], 1)  # (1, w, Q, C)
            refs = torch.stack([w[1] for w in state.window], 1)  # (1, w, Q, 4)
            sentences = torch.stack([w[2] for w in state.window], 1)  # (1, w, C)
            times = torch.tensor([[float(w[3]) for w in state.window]],
                                 dtype=torch.float32,
                                 device=hidden.device)
            single = bool(self.model.test_cfg['single_frame_temporal'])
            refined = temporal.refine(hs, sentences, refs, times, single_frame=single)[:, -1]
        return (refined, *self.model.last_layer_predictions(refined, ref, text, tmask))

    def _select(self, state: _ExpressionState, cls: Tensor) -> Tensor:
        """Indices (k,) of the tracks chosen by their running mean score (the head's
        ``select`` rule on the mean over the frames seen, or the last ``score_window``)."""
        scores = cls[0].float().sigmoid().double()
        if self.score_window is None:
            state.score_sum = scores if state.score_sum is None else state.score_sum + scores
            state.count += 1
            mean = state.score_sum / state.count
        else:
            state.scores.append(scores)
            mean = torch.stack(list(state.scores)).mean(0)
        # the head's rule takes logits (T, Q) and ranks sigmoid(.).mean(0): one row whose
        # sigmoid is the running mean
        logits = torch.logit(mean.clamp(1e-12, 1 - 1e-12))[None]
        return self.model.bbox_head.select_queries(logits).to(cls.device)

    @staticmethod
    def _as_dict(result, selected: Tensor) -> dict:
        """One expression's frame result: merged mask, enclosing box, best score."""
        masks = result.masks
        boxes = result.bboxes.float().cpu().numpy().reshape(-1, 4)
        scores = result.scores.float().cpu().numpy().reshape(-1)
        if len(boxes):
            box = np.concatenate([boxes[:, :2].min(0), boxes[:, 2:].max(0)]).astype(np.float32)
            score = float(scores.max())
            mask = masks.any(0).cpu().numpy()
        else:
            box, score = np.zeros(4, np.float32), 0.0
            mask = np.zeros(tuple(masks.shape[-2:]), bool)
        return dict(mask=mask, box=box, score=score, track=int(selected[0]))

    # ------------------------------------------------------------------ step
    @torch.no_grad()
    def step(self, frame: FrameLike, name: Optional[str] = None) -> List[dict]:
        """Segment every expression in the next frame.

        Args:
            frame (np.ndarray | str): (H, W, 3) uint8 BGR array, or an image file (decoded by
                the config's frame loader, as offline). Every frame must have the first one's
                size.
            name (str, optional): the frame's name (default: the image file's stem, or the
                5-digit index).

        Returns:
            list[dict]: per expression, ``mask`` (H, W) bool at the frame's size, ``box`` (4,)
            float32 xyxy in pixels, ``score`` (float, the chosen track's score on this frame)
            and ``track`` (int, the chosen track).

        Raises:
            ValueError / OSError / FileNotFoundError: a bad frame (None, not a BGR uint8
            array, another size, a truncated or missing file), naming it; the stream is then
            unchanged, so the caller may skip that frame and go on.
        """
        if name is None:
            name = osp.splitext(osp.basename(frame))[0] if isinstance(frame, str) \
                else f'{self.frames_seen:05d}'
        item, size = self._check_frame(frame, str(name))
        inputs, sample = self._preprocess(item, size)
        from mmrvos.models.layers.lora import merged_lora
        model, time = self.model, self.frames_seen
        out = []
        with merged_lora(model), self._autocast(), memory_efficient_attention():
            feats = model.extract_frame_feats(inputs)  # once for all expressions
            pending = []
            for text_dict in self.text_dicts:
                encoded = model.encode_frames(inputs, [sample], text_dict, feats)
                decoded = model.decode_frames(encoded)
                pending.append((encoded, decoded['hidden_states'][-1], decoded['references'][-1]))
            del feats
            # the per-frame model ran without error: now the states move on
            for e, (state, (encoded, hidden, ref)) in enumerate(zip(self._states, pending)):
                refined, cls, boxes, mboxes = self._track(state, hidden, ref,
                                                          encoded['memory_text'],
                                                          encoded['text_token_mask'], time)
                self.last_logits[e] = cls[0]
                selected = self._select(state, cls)
                result = next(
                    iter(
                        model.predict_frames(refined, cls, boxes, mboxes, selected, encoded,
                                             [sample])))
                out.append(self._as_dict(result, selected))
        if self.frame_size is None:
            self.frame_size = size
        self.frames_seen += 1
        return out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(texts={self.texts!r}, window={self.window}, '
                f'score_window={self.score_window}, frames_seen={self.frames_seen})')


__all__ = ['RVOSStream', 'DEFAULT_STREAM_WINDOW']

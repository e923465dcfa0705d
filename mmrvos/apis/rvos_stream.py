"""``RVOSStream``: online referring segmentation, frames in, one mask per expression out.

Offline inference (:meth:`ReferDINO.predict_video`) sees the whole video before it writes a
mask: the temporal decoder attends over every frame and the query sequence is chosen by its
mean score over the video. A stream has only the frames seen so far (plus, with ``delay`` D,
the D frames after the one it outputs), and keeps a bounded state per expression:

* the **memory tracker**'s memory (:meth:`MemoryTracker.start` / :meth:`MemoryTracker.step`),
  carried from frame to frame exactly as offline (the tracker is causal);
* the last ``window`` frames' track-ordered queries, boxes and text features: the
  **cross-modal temporal decoder** attends over them (offline: over the whole video);
* every track's **running score**: the sum of its scores on the frames output so far; the
  head's rule (``test_cfg.select``) picks the track(s) from the mean over those frames and the
  D frames after the current one (offline: the mean over the whole video);
* with ``delay`` D > 0, the D + 1 newest frames' encoder features, to segment frame t - D
  when frame t arrives (fixed-lag output: D frames of latency, the D frames after it seen).

What equals offline: the per-track logits of the frame output at step t are those of the
same frame in an offline run on the video cut at t, when the window covers the frames up to
there (``window > t``); the tracker is the same. With ``window`` and ``delay`` covering the
whole video, everything is offline's, masks included (a test checks it). What costs: offline,
every frame also attends to all later frames and the track is chosen knowing the whole
video; a frame's result here knows D later frames. Where a frame's scores do not depend on
the other frames (the temporal decoder disabled, or idle as the toy configs initialise it),
the output of step t (D = 0) is the last frame of the offline result on the video cut at t.
docs/en/streaming.md measures what W and D cost.

Per frame the backbone runs once for all expressions, then the cross-modal encoder, decoder,
temporal decoder and mask decoder once per expression; the text is encoded once per stream.
Memory and time per frame do not depend on how many frames came before.

Example::

    >>> model = init_rvos_model('configs/referdino/referdino_tiny_1xb3-ft_toy-rvos.py', ckpt)
    >>> stream = RVOSStream(model, ['the red circle', 'the blue square'], window=6)
    >>> for frame in frames:  # (H, W, 3) uint8 BGR arrays or image paths
    ...     red, blue = stream.step(frame)
    ...     red['mask'].shape, red['box'], red['score']  # (H, W) bool, (4,) xyxy, float
    >>> # with delay=D: step() gives frame t - D (None for the first D), flush() the rest
"""
import os.path as osp
from collections import deque
from contextlib import ExitStack
from typing import Deque, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from mmrvos.fileio import check_image_complete, image_size
from mmrvos.models.utils.autocast import inference_autocast
from .inference import build_video_pipeline, check_texts, memory_efficient_attention
from .video_pipeline import VideoTestPipeline

#: the temporal window when neither the call nor ``test_cfg.stream_window`` gives one
DEFAULT_STREAM_WINDOW = 6
FrameLike = Union[np.ndarray, str]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f'{name} must be a positive integer, got {value!r}')
    return int(value)


class _ExpressionState:
    """What a stream keeps of one expression between frames (bounded; see
    :meth:`RVOSStream.state_nbytes`).

    Attributes:
        tracker (dict | None): :meth:`MemoryTracker.start` state (memory (1, Q, C), boxes).
        window (deque): the last W frames' ``(hidden (1, Q, C), ref (1, Q, 4), text (1, L, C),
            tmask (1, L), time)``, track-ordered.
        refined (Tensor | None): (w, Q, C) the window after the temporal decoder (kept for
            :meth:`RVOSStream.flush`).
        score_sum (Tensor | None): (Q,) float64 sum of every track's scores on the frames
            output so far; ``count`` of them.
    """

    def __init__(self, window: int) -> None:
        self.tracker: Optional[Dict[str, Tensor]] = None
        self.window: Deque[Tuple[Tensor, Tensor, Tensor, Tensor, int]] = deque(maxlen=window)
        self.refined: Optional[Tensor] = None
        self.score_sum: Optional[Tensor] = None
        self.count = 0

    def tensors(self) -> List[Tensor]:
        out = list((self.tracker or {}).values())
        for item in self.window:
            out += list(item[:4])
        return out + [t for t in (self.refined, self.score_sum) if t is not None]


class RVOSStream:
    """Segment referring expressions in a video given one frame at a time.

    Args:
        model (nn.Module): a ReferDINO-family model (:class:`ReferDINO`:
            ``extract_frame_feats``, ``encode_frames``, ``decode_frames``,
            ``last_layer_predictions``, ``predict_frames``), e.g. from
            :func:`~mmrvos.apis.init_rvos_model`, in eval mode.
        texts (str | list[str]): the E referring expressions (encoded once, here).
        window (int, optional): frames the temporal decoder attends over (the newest one and
            the W - 1 before it). Default: the model's ``test_cfg.stream_window``, else
            :data:`DEFAULT_STREAM_WINDOW` (6).
        delay (int): D, output frame t - D when frame t arrives (fixed lag: the D later frames
            are then in the temporal decoder's window and in the choice of the track);
            ``window`` must be > D. Default: ``test_cfg.stream_delay``, else 0 (each frame
            when it arrives).
        pipeline (VideoTestPipeline, optional): the frames' test pipeline; default: the
            model's config's (``model.cfg``, see :func:`build_video_pipeline`).
        scale (tuple[int, int], optional): (long, short) working resolution replacing the
            pipeline's resize (when ``pipeline`` is not given).
        video_id (str): the video's name in the frames' metainfo.

    Raises:
        ValueError: no or an empty expression, a bad window or delay, a model that cannot
            stream.
    """

    def __init__(self,
                 model: torch.nn.Module,
                 texts: Union[str, Sequence[str]],
                 window: Optional[int] = None,
                 delay: Optional[int] = None,
                 pipeline: Optional[VideoTestPipeline] = None,
                 scale: Optional[Tuple[int, int]] = None,
                 video_id: str = 'stream') -> None:
        needed = ('extract_frame_feats', 'encode_frames', 'decode_frames', 'last_layer_predictions',
                  'predict_frames', 'encode_text')
        missing = [n for n in needed if not callable(getattr(model, n, None))]
        if missing:
            raise ValueError(f'RVOSStream needs a ReferDINO-family model; '
                             f'{type(model).__name__} lacks {", ".join(missing)} (it segments '
                             'a whole video at once: run it without --stream / RVOSStream)')
        self.texts = check_texts(texts)
        self.model = model
        cfg = model.test_cfg or {}
        self.window = _positive_int(
            window if window is not None else cfg.get('stream_window', DEFAULT_STREAM_WINDOW),
            'window' if window is not None else 'test_cfg.stream_window')
        delay = delay if delay is not None else cfg.get('stream_delay', 0)
        if isinstance(delay, bool) or not isinstance(delay, (int, np.integer)) or delay < 0:
            raise ValueError(f'delay must be an integer >= 0, got {delay!r}')
        self.delay = int(delay)
        if self.window <= self.delay:
            raise ValueError(f'window ({self.window}) must be larger than delay ({self.delay}): '
                             'the frames after the one output are in the window')
        self.pipeline = pipeline or build_video_pipeline(getattr(model, 'cfg', None), scale)
        self.video_id = video_id
        self.device = next(model.parameters()).device
        with torch.no_grad():
            self.text_dicts = [model.encode_text([t]) for t in self.texts]
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget every frame: the next :meth:`step` starts a new video (of any size)."""
        self.frames_seen = 0  # frames given
        self.frames_out = 0  # frames output
        self.frame_size: Optional[Tuple[int, int]] = None  # (W, H) of the first frame
        self._states = [_ExpressionState(self.window) for _ in self.texts]
        # the frames not output yet (at most delay + 1): name, index, sample, E encodings
        self._pending: Deque[dict] = deque()
        #: per expression, the last frame's (Q,) logits of every track (track order)
        self.last_logits: List[Optional[Tensor]] = [None] * len(self.texts)

    def state_nbytes(self) -> int:
        """Bytes of every tensor the stream keeps between frames (all expressions, the
        pending frames' encodings included): it does not grow with the number of frames
        once ``window`` frames were seen."""
        tensors = [t for s in self._states for t in s.tensors()]
        for frame in self._pending:
            for encoded in frame['encoded']:
                tensors += _tensors(encoded)
        seen, total = set(), 0
        for t in tensors:
            key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
            if key not in seen:
                seen.add(key)
                total += key[1]
        return total

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
        return inference_autocast(self.model, self.device.type, enabled=bf16)

    def _advance(self, state: _ExpressionState, hidden: Tensor, ref: Tensor, text: Tensor,
                 tmask: Tensor, time: int) -> None:
        """Tracker step, then the temporal decoder over the window, for one expression.

        Args:
            hidden (Tensor): (1, Q, C) the frame's last-layer queries. ref (Tensor): (1, Q, 4).
            text (Tensor): (1, L, C) fused text. tmask (Tensor): (1, L).
            time (int): the frame's index in the video.
        """
        temporal = self.model.temporal
        tracker = temporal.tracker if temporal is not None else None
        if tracker is not None:
            if state.tracker is None:  # the first frame keeps its order
                state.tracker = tracker.start(hidden.clone(),
                                              ref.clone() if tracker.box_weight > 0 else None)
            else:
                perm = tracker.step(state.tracker, hidden, text, tmask, text[:, 0], ref)
                hidden = torch.gather(hidden, 1, perm[..., None].expand_as(hidden))
                ref = torch.gather(ref, 1, perm[..., None].expand_as(ref))
        state.window.append((hidden.clone(), ref.clone(), text.clone(), tmask.clone(), time))
        hs = torch.stack([w[0] for w in state.window], 1)  # (1, w, Q, C)
        if temporal is not None:
            refs = torch.stack([w[1] for w in state.window], 1)  # (1, w, Q, 4)
            sentences = torch.stack([w[2][:, 0] for w in state.window], 1)  # (1, w, C)
            times = torch.tensor([[float(w[4]) for w in state.window]],
                                 dtype=torch.float32,
                                 device=hidden.device)
            single = bool(self.model.test_cfg['single_frame_temporal'])
            hs = temporal.refine(hs, sentences, refs, times, single_frame=single)
        state.refined = hs[0]

    def _choose(self, state: _ExpressionState, lag: int) -> Tuple[Tensor, ...]:
        """Commit the window's frame ``lag`` frames before its newest one: its head outputs
        and the chosen track(s), added to the running score.

        The track: the head's rule (``test_cfg.select``) on the mean score over the frames
        output before, this frame and the ``lag`` frames after it (their scores in the
        current window).

        Returns:
            tuple: the frame's refined queries (1, Q, C), logits (1, Q), boxes (1, Q, 4),
            mask-decoder boxes (1, Q, 4) and the chosen tracks (k,).
        """
        pos = len(state.window) - 1 - lag
        items = list(state.window)[pos:]
        refined = state.refined[pos:]  # (lag + 1, Q, C)
        refs = torch.cat([i[1] for i in items])
        text, tmask = torch.cat([i[2] for i in items]), torch.cat([i[3] for i in items])
        cls, boxes, mboxes = self.model.last_layer_predictions(refined, refs, text, tmask)
        scores = cls.float().sigmoid().double()  # (lag + 1, Q)
        total = scores.sum(0) if state.score_sum is None else state.score_sum + scores.sum(0)
        mean = total / (state.count + lag + 1)
        # the head's rule takes logits (T, Q) and ranks sigmoid(.).mean(0): one row whose
        # sigmoid is the mean
        logits = torch.logit(mean.clamp(1e-12, 1 - 1e-12))[None]
        selected = self.model.bbox_head.select_queries(logits).to(cls.device)
        state.score_sum = scores[0] if state.score_sum is None else state.score_sum + scores[0]
        state.count += 1
        return refined[:1], cls[:1], boxes[:1], mboxes[:1], selected

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

    def _output(self) -> List[dict]:
        """Segment the oldest pending frame, every expression (inside
        :meth:`_model_context`)."""
        frame = self._pending.popleft()
        lag = len(self._pending)
        out = []
        for e, (state, encoded) in enumerate(zip(self._states, frame['encoded'])):
            refined, cls, boxes, mboxes, selected = self._choose(state, lag)
            result = next(
                iter(
                    self.model.predict_frames(refined, cls, boxes, mboxes, selected, encoded,
                                              [frame['sample']])))
            self.last_logits[e] = cls[0]
            out.append(
                dict(self._as_dict(result, selected), frame=frame['name'], index=frame['index']))
        self.frames_out += 1
        return out

    def _model_context(self) -> ExitStack:
        """No gradients, LoRA merged (:func:`merged_lora`), the config's autocast, the
        memory-efficient attention path."""
        from mmrvos.models.layers.lora import merged_lora
        stack = ExitStack()
        stack.enter_context(torch.no_grad())
        stack.enter_context(merged_lora(self.model))
        stack.enter_context(self._autocast())
        stack.enter_context(memory_efficient_attention())
        return stack

    # ------------------------------------------------------------------ step
    def step(self, frame: FrameLike, name: Optional[str] = None) -> Optional[List[dict]]:
        """Give the next frame; segment every expression in frame t - D (D = ``delay``).

        Args:
            frame (np.ndarray | str): (H, W, 3) uint8 BGR array, or an image file (decoded by
                the config's frame loader, as offline). Every frame must have the first one's
                size.
            name (str, optional): the frame's name (default: the image file's stem, or the
                5-digit index).

        Returns:
            list[dict] | None: per expression, ``mask`` (H, W) bool at the frame's size,
            ``box`` (4,) float32 xyxy in pixels, ``score`` (float, the chosen track's score on
            the frame), ``track`` (int, the chosen track), ``frame`` (its name) and ``index``
            (its index in the video); None while the first D frames come in.

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
        model, time = self.model, self.frames_seen
        with self._model_context():
            feats = model.extract_frame_feats(inputs)  # once for all expressions
            encodings, queries = [], []
            for text_dict in self.text_dicts:
                encoded = model.encode_frames(inputs, [sample], text_dict, feats)
                decoded = model.decode_frames(encoded)
                encodings.append(encoded)
                queries.append((decoded['hidden_states'][-1], decoded['references'][-1]))
            del feats, decoded
            # the per-frame model ran without error: now the states move on
            for state, encoded, (hidden, ref) in zip(self._states, encodings, queries):
                self._advance(state, hidden, ref, encoded['memory_text'],
                              encoded['text_token_mask'], time)
            self._pending.append(dict(name=str(name), index=time, sample=sample, encoded=encodings))
            if self.frame_size is None:
                self.frame_size = size
            self.frames_seen += 1
            if len(self._pending) <= self.delay:
                return None
            return self._output()

    def skip(self) -> None:
        """A frame of the video that cannot be used (a corrupt file, a frame of another
        size, a frame a camera dropped): nothing is output for it, but the video's time moves
        on, so the frames after it keep their true index (in the results and in the temporal
        decoder's trajectory times, whose velocities would otherwise take the gap for one
        frame)."""
        self.frames_seen += 1

    def flush(self) -> List[List[dict]]:
        """Segment the frames still pending at the end of the video (the last D with
        ``delay`` D; none without), each knowing the frames after it. Returns one list per
        expression for each, in order."""
        out = []
        with self._model_context():
            while self._pending:
                out.append(self._output())
        return out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(texts={self.texts!r}, window={self.window}, '
                f'delay={self.delay}, frames_seen={self.frames_seen})')


def _tensors(value) -> List[Tensor]:
    """Every tensor in a (nested) dict / list / tuple."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


__all__ = ['RVOSStream', 'DEFAULT_STREAM_WINDOW']

"""High-level inference: build a model from a config and segment expressions in a video.

A video is read lazily (:mod:`mmrvos.apis.video_reader`) and preprocessed chunk by chunk when
the model asks for a chunk (:class:`LazyVideoTensor`): only the per-frame query features the
tracker needs are kept for the whole video by the model, never the frames.
"""
import contextlib
import math
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from .config import init_scope, load_config, merge_cfg_options
from .video_reader import IMAGE_EXTS, FrameSource, open_video

VideoLike = Union[str, Sequence[str], FrameSource]


def _load_weights(model: torch.nn.Module, checkpoint: str) -> None:
    """Load ``checkpoint`` into ``model``; every parameter must be covered (strict). Any
    scheme (path, URL, ``torchvision://`` ...) is unpickled with ``weights_only=True``."""
    from mmrvos.engine.checkpoint import safe_checkpoint_loaders
    with safe_checkpoint_loaders():
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)


def check_device(device: Union[str, torch.device]) -> torch.device:
    """``torch.device(device)``, refusing a malformed name or a CUDA device this machine lacks.

    Raises:
        ValueError: naming the device.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f'invalid device {device!r} ({err})') from None
    if dev.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'device {device!r}: CUDA is not available on this machine '
                             '(use cpu)')
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f'device {device!r}: this machine has '
                             f'{torch.cuda.device_count()} CUDA device(s)')
    return dev


def init_rvos_model(config: Union[str, Config], checkpoint: Optional[str] = None,
                    device: str = 'cpu', cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build a model from a config file (or Config) and optionally load a checkpoint.

    Sets up the registry scope (the config's ``default_scope``, mmdet's by default) as
    ``mmdet.apis.init_detector`` does, so it works in a fresh process. ``cfg_options`` keys
    must exist in the config (see :func:`~mmrvos.apis.config.merge_cfg_options`). The
    checkpoint must cover every parameter of the model: missing or unexpected keys raise an
    error instead of leaving weights silently at their initialisation.

    Raises:
        FileNotFoundError: config or checkpoint missing. ValueError: not a config, unknown
            ``cfg_options`` key, a type the registry does not know, or a bad device.
    """
    cfg = load_config(config) if isinstance(config, str) else config
    dev = check_device(device)
    if checkpoint is not None and not (isinstance(checkpoint, str) and (
            '://' in checkpoint or osp.isfile(checkpoint))):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    merge_cfg_options(cfg, cfg_options, source='cfg_options')
    init_scope(cfg)
    from mmdet.registry import MODELS
    try:
        model = MODELS.build(cfg.model)
    except KeyError as err:  # the registry's "X is not in the model registry"
        raise ValueError(f'{getattr(cfg, "filename", None) or "config"}: cannot build the '
                         f'model: {err.args[0] if err.args else err}') from err
    from mmrvos.engine.checkpoint import safe_checkpoint_loaders
    with safe_checkpoint_loaders():  # weights_only=True for init_cfg weights (Pretrained)
        model.init_weights()
    if checkpoint is not None:
        _load_weights(model, checkpoint)
    model.cfg = cfg
    return model.to(dev).eval()


def load_video(video: VideoLike) -> Tuple[List[np.ndarray], List[str]]:
    """Read a whole video as BGR frames (short videos; :func:`open_video` reads lazily).

    Args:
        video: a folder of frames (in numeric order), a video file (mp4, avi, ...) or a list of
            image paths.

    Returns:
        tuple: frames (list of (H, W, 3) uint8 BGR arrays) and frame names (file stems, or
        5-digit indices for a video file).
    """
    source = open_video(video)
    return list(source.iter_frames()), list(source.names)


def _video_metainfo(model, size: Tuple[int, int], num_frames: int,
                    scale: Tuple[int, int]) -> Tuple[List[dict], Tuple[int, int]]:
    """Per-frame metainfo of a video whose frames all have ``size`` (W, H), resized with
    :func:`mmcv.imrescale` to ``scale`` and padded by the data preprocessor; and the resized
    (W, H)."""
    (new_w, new_h), factor = mmcv.rescale_size(size, scale, return_scale=True)
    divisor = int(getattr(model.data_preprocessor, 'pad_size_divisor', 1) or 1)
    pad = (int(math.ceil(new_h / divisor)) * divisor, int(math.ceil(new_w / divisor)) * divisor)
    metas = [dict(ori_shape=(size[1], size[0]), img_shape=(new_h, new_w),
                  scale_factor=(factor, factor), frame_index=i, ori_video_length=num_frames,
                  batch_input_shape=pad, pad_shape=pad) for i in range(num_frames)]
    return metas, (new_w, new_h)


def preprocess_frames(model, frames: Sequence[np.ndarray], metas: Sequence[dict],
                      scale: Tuple[int, int]) -> torch.Tensor:
    """Resize (:func:`mmcv.imrescale`, keep ratio) and run the model's data preprocessor on
    frames of one size.

    Returns:
        Tensor: (t, 3, H, W) normalised frames padded to ``metas[0]['batch_input_shape']``.
    """
    tensors = []
    for img in frames:
        resized = mmcv.imrescale(img, scale)
        tensors.append(torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1))))
    clip = TrackDataSample()
    clip.video_data_samples = [DetDataSample(metainfo=dict(m)) for m in metas]
    data = model.data_preprocessor(dict(inputs=[torch.stack(tensors)], data_samples=[clip]),
                                   False)
    out = data['inputs'][0]
    if tuple(out.shape[-2:]) != tuple(metas[0]['batch_input_shape']):
        raise RuntimeError(f'data preprocessor padded to {tuple(out.shape[-2:])}, expected '
                           f'{metas[0]["batch_input_shape"]}')
    return out


def prepare_video(model, frames: List[np.ndarray], scale: Tuple[int, int] = (640, 360)):
    """Resize (keep ratio, short side <= scale[1], long side <= scale[0]) and run the model's
    data preprocessor on a whole (short) video held in memory.

    Returns:
        tuple: (T, 3, H, W) normalised, padded frames and their T ``DetDataSample`` s.
    """
    sizes = {(f.shape[1], f.shape[0]) for f in frames}
    if len(sizes) != 1:
        raise ValueError(f'frames have different sizes {sorted(sizes)}')
    metas, _ = _video_metainfo(model, sizes.pop(), len(frames), scale)
    inputs = preprocess_frames(model, frames, metas, scale)
    return inputs, [DetDataSample(metainfo=m) for m in metas]


class LazyVideoTensor:
    """A (T, 3, H, W) preprocessed video that reads, resizes and normalises frames only when
    a slice is asked for, as :meth:`ReferDINO.predict_video` does chunk by chunk (only that
    chunk's frames are then in memory).

    It offers what ``predict_video`` takes as a video: ``len()``, ``shape`` and
    ``video[start:stop]`` (a real (t, 3, H, W) tensor on ``device``).

    Args:
        model: the model (its ``data_preprocessor``).
        source (FrameSource): the frames.
        scale (tuple): (long, short) working resolution, as :func:`mmcv.imrescale`.
        device: where the chunks go.
    """

    def __init__(self, model, source: FrameSource, scale: Tuple[int, int], device) -> None:
        self.model, self.source, self.scale = model, source, tuple(scale)
        self.device = torch.device(device)
        self.metas, _ = _video_metainfo(model, source.size, len(source), self.scale)
        pad_h, pad_w = self.metas[0]['batch_input_shape']
        self.shape = torch.Size((len(source), 3, pad_h, pad_w))
        self.frame_samples = [DetDataSample(metainfo=m) for m in self.metas]
        self.reads: List[Tuple[int, int]] = []  # (start, stop) of every slice read

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> torch.Tensor:
        if not isinstance(index, slice):
            raise TypeError(f'LazyVideoTensor takes slices of frames, got {index!r}')
        start, stop, step = index.indices(len(self))
        if step != 1 or stop <= start:
            raise IndexError(f'LazyVideoTensor takes non-empty contiguous slices, got {index}')
        self.reads.append((start, stop))
        frames = list(self.source.iter_frames(start, stop))
        return preprocess_frames(self.model, frames, self.metas[start:stop],
                                 self.scale).to(self.device)


@contextlib.contextmanager
def memory_efficient_attention():
    """Turn off ``nn.MultiheadAttention``'s inference fast path while open.

    In eval mode without gradients, a ``batch_first`` MultiheadAttention takes PyTorch's fused
    "fast path", which materialises the (B, heads, L, L) attention weights even with
    ``need_weights=False``; the temporal decoder attends over all T frames of a video, so that
    is O(T^2) memory (666 MB at T=1000 for 24 queries and 8 heads). Without the fast path the
    same layer goes through ``scaled_dot_product_attention`` (memory-efficient on CPU and CUDA,
    146 MB there), with the same result.
    """
    mha = getattr(torch.backends, 'mha', None)
    if mha is None or not hasattr(mha, 'set_fastpath_enabled'):
        yield
        return
    before = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(before)


def _check_texts(texts: Union[str, Sequence[str]]) -> List[str]:
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise ValueError('no expression given')
    for t in texts:
        if not isinstance(t, str) or not t.strip():
            raise ValueError(f'empty expression {t!r}')
    return texts


def segment_video(model, video: VideoLike, texts: Union[str, Sequence[str]],
                  on_frame: Callable[[Dict], None],
                  scale: Tuple[int, int] = (640, 360)) -> FrameSource:
    """Segment each expression in ``texts`` in every frame of ``video``, handing each frame's
    results to ``on_frame`` as soon as every expression has it (in frame order).

    Frames are read lazily and preprocessed chunk by chunk (:class:`LazyVideoTensor`); the
    model keeps per-frame query features for the tracker, and this function at most one chunk
    of results: nothing of the size of the video's frames or masks accumulates.

    Args:
        on_frame (callable): called with a dict: ``index``, ``name`` (frame name), and per
            expression (lists of E): ``masks`` (H, W) bool at the original size, ``boxes``
            (k, 4) xyxy, ``scores`` (k,).

    Returns:
        FrameSource: the video's frames (names, size).
    """
    texts = _check_texts(texts)
    source = open_video(video)
    device = next(model.parameters()).device
    lazy = LazyVideoTensor(model, source, scale, device)
    pending: Dict[int, Dict[int, object]] = {}
    done = [0]

    def on_result(e: int, t: int, result) -> None:
        pending.setdefault(t, {})[e] = result
        while len(pending.get(done[0], ())) == len(texts):
            index = done[0]
            frame = pending.pop(index)
            res = [frame[i] for i in range(len(texts))]
            on_frame(dict(index=index, name=source.names[index],
                          masks=[r.masks.any(0).cpu().numpy() for r in res],
                          boxes=[r.bboxes.cpu().numpy() for r in res],
                          scores=[r.scores.float().cpu().numpy() for r in res]))
            done[0] += 1

    with torch.no_grad(), memory_efficient_attention():
        text_dicts = [model.encode_text([t]) for t in texts]
        model.predict_video(lazy, lazy.frame_samples, text_dicts, on_result=on_result)
    if done[0] != len(source):
        raise RuntimeError(f'the model gave results for {done[0]} of {len(source)} frames')
    return source


def inference_rvos(model, video: VideoLike, texts: Union[str, Sequence[str]],
                   scale: Tuple[int, int] = (640, 360)) -> List[Dict]:
    """Segment each expression in ``texts`` in every frame of ``video``.

    The visual backbone runs once per frame chunk for all expressions. The returned masks of
    a long video are large (T x H x W bools per expression): :func:`segment_video` hands
    them over frame by frame instead.

    Returns:
        list[dict]: per expression, ``text``, ``frame_names``, ``masks`` (T, H, W) bool at the
        original size, ``boxes`` (T, k, 4) xyxy, ``scores`` (T, k).
    """
    texts = _check_texts(texts)
    names, masks, boxes, scores = [], [], [], []

    def collect(res: Dict) -> None:
        names.append(res['name'])
        masks.append(res['masks'])
        boxes.append(res['boxes'])
        scores.append(res['scores'])

    segment_video(model, video, texts, collect, scale)
    return [dict(text=text, frame_names=names,
                 masks=np.stack([m[e] for m in masks]),
                 boxes=np.stack([b[e] for b in boxes]),
                 scores=np.stack([s[e] for s in scores])) for e, text in enumerate(texts)]


__all__ = ['init_rvos_model', 'load_video', 'open_video', 'prepare_video', 'preprocess_frames',
           'LazyVideoTensor', 'segment_video', 'inference_rvos', 'check_device',
           'IMAGE_EXTS']

"""Model building and streaming segmentation: the machinery of :class:`RVOSInferencer`, and
the functional API (``init_rvos_model``, ``inference_rvos``, ``segment_video``) over it.

A video is read lazily (:mod:`mmrvos.apis.video_reader`) and goes through the config's test
pipeline and the model's data preprocessor chunk by chunk when the model asks for a chunk
(:class:`~mmrvos.apis.video_pipeline.LazyVideoTensor`): only the per-frame query features the
tracker needs are kept for the whole video by the model, never the frames.
"""
import contextlib
import os.path as osp
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from .config import init_scope, load_config, merge_cfg_options
from .video_pipeline import (DEFAULT_TEST_PIPELINE, LazyVideoTensor, VideoTestPipeline,
                             config_test_pipeline)
from .video_reader import IMAGE_EXTS, FrameSource, open_video

VideoLike = Union[str, Sequence[str], FrameSource]


def _load_weights(model: torch.nn.Module, checkpoint: str, config: str = 'the config') -> None:
    """Load ``checkpoint`` into ``model``; every parameter must be covered (strict). Any
    scheme (path, URL, ``torchvision://`` ...) is unpickled with ``weights_only=True``.

    Raises:
        ValueError: the checkpoint's keys or shapes do not fit the model (a checkpoint of
            another model or config), in a few lines (:func:`checkpoint_mismatch_message`)
            instead of mmengine's list of every key.
    """
    from mmrvos.engine.checkpoint import safe_checkpoint_loaders
    try:
        with safe_checkpoint_loaders():
            load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    except RuntimeError as err:
        message = checkpoint_mismatch_message(str(err), checkpoint, config)
        if message is None:
            raise
        raise ValueError(message) from None


def checkpoint_mismatch_message(text: str, checkpoint: str, config: str) -> Optional[str]:
    """A short message from mmengine's strict-loading error ``text`` (which lists every
    missing and unexpected key and every shape mismatch: thousands of lines for a checkpoint
    of another model): counts and the first names of each kind. None when ``text`` is not
    a key/shape mismatch."""
    lines = text.splitlines()

    def keys(label):
        for line in lines:
            if line.startswith(label):
                return [k.strip() for k in line[len(label):].split(',') if k.strip()]
        return []

    missing = keys('missing keys in source state_dict:')
    unexpected = keys('unexpected key in source state_dict:')
    shapes = [line.strip() for line in lines if line.strip().startswith('size mismatch for')]
    if not (missing or unexpected or shapes):
        return None
    parts = []
    if missing:
        parts.append(f'{len(missing)} parameter(s) of the model are missing from it '
                     f'(e.g. {", ".join(missing[:3])})')
    if unexpected:
        parts.append(f'{len(unexpected)} of its entries are not in the model '
                     f'(e.g. {", ".join(unexpected[:3])})')
    if shapes:
        parts.append(f'{len(shapes)} shape mismatch(es) (e.g. {shapes[0]})')
    return (f'checkpoint {checkpoint} does not fit the model of {config}: ' + '; '.join(parts) +
            '. Is it a checkpoint of another model or config?')


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


@contextlib.contextmanager
def _quiet_init_log():
    """mmengine's ``init_weights`` prints how every parameter was initialised (thousands of
    lines) when the current logger writes no log file, i.e. outside a Runner: keep it to
    warnings while open."""
    import logging

    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    if any(isinstance(h, logging.FileHandler) for h in logger.handlers):
        yield
        return
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def init_rvos_model(config: Union[str, Config],
                    checkpoint: Optional[str] = None,
                    device: str = 'cpu',
                    cfg_options: Optional[dict] = None) -> torch.nn.Module:
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
    if checkpoint is not None and not (isinstance(checkpoint, str) and
                                       ('://' in checkpoint or osp.isfile(checkpoint))):
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
    with safe_checkpoint_loaders(), _quiet_init_log():
        model.init_weights()  # weights_only=True for init_cfg weights (Pretrained)
    if checkpoint is not None:
        _load_weights(model, checkpoint, getattr(cfg, 'filename', None) or 'the config')
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


def build_video_pipeline(cfg: Optional[Config],
                         scale: Optional[Tuple[int, int]] = None) -> VideoTestPipeline:
    """The test pipeline of a model's config (``model.cfg``, set by :func:`init_rvos_model`)
    for a user's video; ``scale`` (long, short) replaces its resize.

    A config without ``test_dataloader.dataset.pipeline`` (a model-only config such as
    ``configs/_base_/models/*.py``), or no config, gets the Ref-YouTube-VOS test pipeline
    (short side 360), with a warning unless ``scale`` is given.
    """
    pipeline = config_test_pipeline(cfg)
    source = (getattr(cfg, 'filename', None) or 'the model config') if cfg is not None \
        else 'the default test pipeline'
    if pipeline is None:
        pipeline = DEFAULT_TEST_PIPELINE
        if scale is None:
            warnings.warn(f'{source}: no test_dataloader.dataset.pipeline; frames are resized '
                          'as the Ref-YouTube-VOS test pipeline does (short side 360)')
    return VideoTestPipeline(pipeline, scale=scale, source=source)


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


def check_texts(texts: Union[str, Sequence[str]]) -> List[str]:
    """One expression or several as a list, refusing none and empty ones.

    Raises:
        ValueError: naming the empty expression.
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise ValueError('no expression given')
    for t in texts:
        if not isinstance(t, str) or not t.strip():
            raise ValueError(f'empty expression {t!r}')
    return texts


def is_streaming_model(model) -> bool:
    """Whether ``model`` segments a video chunk by chunk (ReferDINO's ``encode_text`` +
    ``predict_video``) rather than as one clip (``predict_clip``)."""
    return all(callable(getattr(model, n, None)) for n in ('encode_text', 'predict_video'))


def predict_whole_video(model, video: LazyVideoTensor, texts: Sequence[str],
                        on_result: Callable[[int, int, object], None]) -> None:
    """Whole-clip inference for the detectors that see a video at once
    (:meth:`~mmrvos.models.BaseRVOSDetector.predict_texts`: ReferFormer, MPG-SAM 2), as their
    own test loops do: the (T, 3, H, W) video is read once for all expressions and held in
    memory (unlike ReferDINO's chunked path), except for a model with ``reads_clips_lazily``,
    which slices the lazy reader itself (chunk by chunk); each expression's T per-frame results
    go to ``on_result(e, t, result)``.

    Raises:
        TypeError: the model has neither ``predict_video`` nor ``predict_texts``.
    """
    if not callable(getattr(model, 'predict_texts', None)):
        raise TypeError(f'{type(model).__name__} cannot segment a video: it has neither '
                        'predict_video (ReferDINO) nor predict_texts (BaseRVOSDetector)')
    frames = video if model.reads_clips_lazily else video[0:len(video)]
    for e, frame_results in enumerate(model.predict_texts(frames, video.frame_samples, texts)):
        if len(frame_results) != len(video):
            raise RuntimeError(f'{type(model).__name__} gave {len(frame_results)} results for '
                               f'{len(video)} frames')
        for t, result in enumerate(frame_results):
            on_result(e, t, result)


def stream_video(model, video: LazyVideoTensor, texts: Sequence[str],
                 on_frame: Callable[[Dict], None]) -> int:
    """Run ``model.predict_video`` on a lazy video for every expression (or, for a model that
    sees the whole clip at once, :func:`predict_whole_video`) and hand each frame's results to
    ``on_frame`` as soon as every expression has it, in frame order (see :func:`segment_video`
    for the dict). Returns the number of frames handed over.

    Raises:
        RuntimeError: the model gave results for fewer frames than the video has.
    """
    pending: Dict[int, Dict[int, object]] = {}
    done = [0]
    names = video.source.names

    def on_result(e: int, t: int, result) -> None:
        pending.setdefault(t, {})[e] = result
        while len(pending.get(done[0], ())) == len(texts):
            index = done[0]
            frame = pending.pop(index)
            res = [frame[i] for i in range(len(texts))]
            on_frame(
                dict(
                    index=index,
                    name=names[index],
                    masks=[r.masks.any(0).cpu().numpy() for r in res],
                    boxes=[r.bboxes.float().cpu().numpy() for r in res],
                    scores=[r.scores.float().cpu().numpy() for r in res]))
            done[0] += 1

    with torch.no_grad(), memory_efficient_attention():
        if is_streaming_model(model):
            text_dicts = [model.encode_text([t]) for t in texts]
            model.predict_video(video, video.frame_samples, text_dicts, on_result=on_result)
        else:
            predict_whole_video(model, video, texts, on_result)
    if done[0] != len(video):
        raise RuntimeError(f'the model gave results for {done[0]} of {len(video)} frames')
    return done[0]


def segment_video(model,
                  video: VideoLike,
                  texts: Union[str, Sequence[str]],
                  on_frame: Callable[[Dict], None],
                  scale: Optional[Tuple[int, int]] = None,
                  pipeline: Optional[VideoTestPipeline] = None) -> FrameSource:
    """Segment each expression in ``texts`` in every frame of ``video``, handing each frame's
    results to ``on_frame`` as soon as every expression has it (in frame order).

    Frames are read lazily and go through the config's test pipeline and the data
    preprocessor chunk by chunk (:class:`LazyVideoTensor`); the model keeps per-frame query
    features for the tracker, and this function at most one chunk of results: nothing of the
    size of the video's frames or masks accumulates.

    Args:
        video: a frame folder, a video file, a list of image paths or a ``FrameSource``.
        on_frame (callable): called with a dict: ``index``, ``name`` (frame name), and per
            expression (lists of E): ``masks`` (H, W) bool at the original size, ``boxes``
            (k, 4) xyxy, ``scores`` (k,).
        scale (tuple, optional): (long, short) working resolution replacing the test
            pipeline's resize (see :func:`build_video_pipeline`).
        pipeline (VideoTestPipeline, optional): the pipeline (default: the model's config's).

    Returns:
        FrameSource: the video's frames (names, size).
    """
    texts = check_texts(texts)
    source = open_video(video)
    device = next(model.parameters()).device
    pipeline = pipeline or build_video_pipeline(getattr(model, 'cfg', None), scale)
    lazy = LazyVideoTensor(source, pipeline, model.data_preprocessor, device)
    stream_video(model, lazy, texts, on_frame)
    return source


def inference_rvos(model,
                   video: VideoLike,
                   texts: Union[str, Sequence[str]],
                   scale: Optional[Tuple[int, int]] = None) -> List[Dict]:
    """Segment each expression in ``texts`` in every frame of ``video`` (a frame folder, a
    video file or a list of image paths), through the model's config's test pipeline
    (``scale``: (long, short) working resolution replacing its resize).

    The visual backbone runs once per frame chunk for all expressions. The returned masks of
    a long video are large (T x H x W bools per expression): :func:`segment_video` hands
    them over frame by frame instead; :class:`~mmrvos.apis.RVOSInferencer` also writes
    masks, overlays and a summary.

    Returns:
        list[dict]: per expression, ``text``, ``frame_names``, ``masks`` (T, H, W) bool at the
        original size, ``boxes`` (T, k, 4) xyxy, ``scores`` (T, k).
    """
    texts = check_texts(texts)
    names, masks, boxes, scores = [], [], [], []

    def collect(res: Dict) -> None:
        names.append(res['name'])
        masks.append(res['masks'])
        boxes.append(res['boxes'])
        scores.append(res['scores'])

    segment_video(model, video, texts, collect, scale)
    return [
        dict(
            text=text,
            frame_names=names,
            masks=np.stack([m[e] for m in masks]),
            boxes=np.stack([b[e] for b in boxes]),
            scores=np.stack([s[e] for s in scores])) for e, text in enumerate(texts)
    ]


__all__ = [
    'init_rvos_model', 'load_video', 'open_video', 'build_video_pipeline', 'LazyVideoTensor',
    'check_texts', 'stream_video', 'segment_video', 'inference_rvos', 'check_device',
    'memory_efficient_attention', 'IMAGE_EXTS'
]

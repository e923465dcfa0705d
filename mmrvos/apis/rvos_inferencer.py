"""``RVOSInferencer``: a model (config or metafile name + weights) applied to a user's video and
expressions, as mmdet's ``DetInferencer`` is to images."""
import contextlib
import copy
import difflib
import math
import os.path as osp
import sys
import time
import warnings
from datetime import datetime
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.infer import BaseInferencer
from mmengine.utils import ProgressBar

from mmrvos.fileio import StagedOutputDir
from mmrvos.visualization import VIDEO_FORMATS, RVOSLocalVisualizer
from .config import CONFIG_EXTS, init_scope, load_config, merge_cfg_options
from .inference import (VideoLike, build_video_pipeline, check_device, check_texts, init_rvos_model,
                        stream_video)
from .result_writer import INFERENCE_OUTPUTS, RVOSResultWriter
from .video_pipeline import LazyVideoTensor, VideoTestPipeline
from .video_reader import FrameSource, open_video

DEFAULT_FPS = 6.0  # overlay frame rate of a frame folder (a video file gives its own)


def find_metafile_model(name: str) -> Tuple[str, dict]:
    """The model-index entry of the model ``name`` (its ``Name`` or an ``Alias``, any case),
    looked up as mmengine's ``BaseInferencer`` does: ``model-index.yml`` of the repository
    (or of the installed package's ``.mim``).

    Returns:
        tuple: the folder of ``model-index.yml`` and the entry (``Config``, ``Weights`` ...).

    Raises:
        ValueError: no such model (naming the nearest ones), or no model index.
    """
    try:
        root = BaseInferencer._get_repo_or_mim_dir('mmrvos')
        models = list(BaseInferencer._get_models_from_metafile(root))
    except (FileNotFoundError, KeyError, ImportError) as err:
        raise ValueError(f'{name!r} is not a config file, and mmrvos has no model index to '
                         f'look it up in ({err})') from None
    names = []
    for entry in models:
        aliases = entry.get('Alias') or []
        aliases = [aliases] if isinstance(aliases, str) else list(aliases)
        candidates = [entry['Name']] + aliases
        if name.lower() in [c.lower() for c in candidates]:
            return root, entry
        names += candidates
    near = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f' (did you mean {", ".join(near)}?)' if near else \
        f' (models: {", ".join(names)})'
    raise ValueError(f'{name!r}: no such config file, and no model of that name in '
                     f'{osp.join(root, "model-index.yml")}{hint}')


def resolve_model(model: Union[str, Config, dict]) -> Tuple[Config, Optional[str]]:
    """A config (file, ``Config`` or dict) or a metafile model name -> (Config, weights named
    by the metafile or None)."""
    if isinstance(model, Config):
        return copy.deepcopy(model), None
    if isinstance(model, dict):
        return Config(copy.deepcopy(dict(model))), None
    if not isinstance(model, str):
        raise ValueError(f'model must be a config file, a Config or a model name of the '
                         f'metafile, got {type(model).__name__}')
    if osp.isfile(model) or model.lower().endswith(CONFIG_EXTS):
        return load_config(model), None  # a missing file is an error naming it
    root, entry = find_metafile_model(model)
    cfg = load_config(osp.join(root, entry['Config']))
    weights = entry.get('Weights')
    weights = weights[0] if isinstance(weights, (list, tuple)) and weights else weights
    return cfg, weights


def _loadable(weights: str) -> bool:
    return isinstance(weights, str) and ('://' in weights or osp.isfile(weights))


def merge_frame_result(res: Dict) -> Dict:
    """One frame's results of :func:`stream_video` with one box and score per expression: the
    box enclosing the k selected instances and their best score (k is 1 unless the config's
    ``test_cfg.select`` is ``'all'``; no instance: a zero box, score 0).

    Returns:
        dict: ``index``, ``name``, ``masks`` (E (H, W) bool), ``boxes`` (E, 4) float32 xyxy,
        ``scores`` (E,) float32.
    """
    boxes, scores = [], []
    for box, score in zip(res['boxes'], res['scores']):
        box = np.asarray(box, np.float32).reshape(-1, 4)
        if len(box):
            boxes.append(np.concatenate([box[:, :2].min(0), box[:, 2:].max(0)]))
            scores.append(float(np.max(score)))
        else:
            boxes.append(np.zeros(4, np.float32))
            scores.append(0.0)
    return dict(
        index=res['index'],
        name=res['name'],
        masks=list(res['masks']),
        boxes=np.stack(boxes).astype(np.float32),
        scores=np.asarray(scores, np.float32))


class _Predictions:
    """Per-expression results collected frame by frame (masks only if asked for)."""

    def __init__(self, texts: Sequence[str], keep_masks: bool) -> None:
        self.texts, self.keep_masks = list(texts), keep_masks
        self.names: List[str] = []
        self.masks: List[List[np.ndarray]] = [[] for _ in texts]
        self.boxes: List[np.ndarray] = []
        self.scores: List[np.ndarray] = []

    def add(self, res: Dict) -> None:
        self.names.append(res['name'])
        self.boxes.append(res['boxes'])
        self.scores.append(res['scores'])
        if self.keep_masks:
            for e, mask in enumerate(res['masks']):
                self.masks[e].append(mask)

    def results(self) -> List[Dict]:
        boxes, scores = np.stack(self.boxes, 1), np.stack(self.scores, 1)  # (E, T, 4), (E, T)
        out = []
        for e, text in enumerate(self.texts):
            pred = dict(text=text, frame_names=list(self.names), boxes=boxes[e], scores=scores[e])
            if self.keep_masks:
                pred['masks'] = np.stack(self.masks[e])
            out.append(pred)
        return out


class _Progress:
    """Two mmengine progress bars over the frames: pass 1 (frames read and encoded), pass 2
    (frames segmented). A video longer than one chunk is read twice; the bar counts each frame
    once."""

    def __init__(self, num_frames: int, enabled: bool) -> None:
        self.num, self.enabled = num_frames, enabled
        self.seen, self.bar, self.stage = 0, None, 0

    def _next(self, label: str) -> None:
        print(label, flush=True)
        self.bar, self.stage = ProgressBar(self.num), self.stage + 1

    def start(self) -> None:
        if self.enabled:
            self._next(f'pass 1/2: encoding {self.num} frames')

    def read(self, start: int, stop: int) -> None:
        if self.enabled and self.stage == 1 and stop > self.seen:
            self.bar.update(stop - self.seen)
            self.seen = stop
            if self.seen == self.num:
                sys.stdout.write('\n')

    def result(self) -> None:
        if not self.enabled:
            return
        if self.stage < 2:
            self._next(f'pass 2/2: segmenting {self.num} frames')
        self.bar.update()
        if self.bar.completed == self.num:
            sys.stdout.write('\n')


class RVOSInferencer(BaseInferencer):
    """Segment the objects that expressions refer to in a video (file or frame folder).

    As mmdet's ``DetInferencer``: ``model`` is a config file or a model name of the
    metafile (``configs/referdino/metafile.yml`` through ``model-index.yml``), ``weights``
    the checkpoint (unpickled with ``weights_only=True``; must cover every parameter). The
    video goes through the config's **test pipeline** (``test_dataloader.dataset.pipeline``,
    as ``tools/test.py`` feeds it; :class:`~mmrvos.apis.video_pipeline.VideoTestPipeline`) and
    the model's data preprocessor, a chunk of frames at a time: frames are read lazily
    (``mmcv.VideoReader`` for video files) and released after their chunk, and outputs are
    written as they are ready.

    Example::

        >>> inferencer = RVOSInferencer('configs/referdino/referdino_swin-t_8xb1-2e_ref-ytvos.py',
        ...                             weights='checkpoints/referdino_swin-t_ytvos.pth')
        >>> result = inferencer('video.mp4', texts=['a man in a white judo uniform'],
        ...                     out_dir='outputs/judo')
        >>> result['predictions'][0]['masks'].shape  # (T, H, W) bool

    Args:
        model (str | Config | dict): config file, config, or metafile model name (or alias).
        weights (str, optional): checkpoint (path or URL); default: the metafile's weights
            for a model name; None for a config: random initialisation, with a warning.
        device (str, optional): 'cpu', 'cuda', 'cuda:N'. Defaults to CUDA when available.
        scope (str, optional): registry scope; defaults to the config's ``default_scope``.
        show_progress (bool): progress bars over the frames. Defaults to True.
        scale (tuple[int, int], optional): (long, short) working resolution replacing the
            test pipeline's resize (``tools/demo.py --scale``). Defaults to the pipeline's.
        cfg_options (dict, optional): config overrides (keys must exist; ``+key`` adds one).
        refiner (str | dict, optional): mask refinement through the video
            (``model.test_cfg.refiner``): a local transformers SAM 2 checkpoint folder for
            :class:`~mmrvos.models.refiners.SAM2VideoRefiner`, or a refiner config dict.
            Defaults to the config's (none in the shipped configs).
    """

    preprocess_kwargs: set = set()
    forward_kwargs: set = set()
    visualize_kwargs: set = set()
    postprocess_kwargs: set = set()

    def __init__(self,
                 model: Union[str, Config, dict],
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 scope: Optional[str] = None,
                 show_progress: bool = True,
                 scale: Optional[Tuple[int, int]] = None,
                 cfg_options: Optional[dict] = None,
                 refiner: Optional[Union[str, dict]] = None) -> None:
        cfg, metafile_weights = resolve_model(model)
        if weights is None and metafile_weights is not None:
            if not _loadable(metafile_weights):
                raise ValueError(f'model {model!r}: the metafile gives no loadable weights '
                                 f'({metafile_weights!r}); pass weights=<checkpoint>')
            weights = metafile_weights
        if scale is not None:
            scale = tuple(scale)
            if len(scale) != 2 or not all(isinstance(s, int) and s > 0 for s in scale):
                raise ValueError(f'scale must be two positive integers (long, short), got '
                                 f'{scale}')
        device = str(check_device(device or ('cuda' if torch.cuda.is_available() else 'cpu')))
        merge_cfg_options(cfg, cfg_options, source='cfg_options')
        if refiner is not None:
            if isinstance(refiner, str):
                refiner = dict(type='SAM2VideoRefiner', sam2=refiner)
            if not isinstance(refiner, dict):
                raise TypeError(f'refiner must be a SAM 2 folder or a config dict, got '
                                f'{type(refiner).__name__}')
            test_cfg = cfg.model.get('test_cfg') or {}
            cfg.model.test_cfg = dict(test_cfg, refiner=refiner)
        init_scope(cfg)
        self.scale, self.weights = scale, weights
        self.config_file = getattr(cfg, 'filename', None)
        super().__init__(
            model=cfg,
            weights=weights,
            device=device,
            scope=scope or cfg.get('default_scope', 'mmdet'),
            show_progress=show_progress)

    # ------------------------------------------------------------------ set-up
    def _init_model(self, cfg: Config, weights: Optional[str], device: str = 'cpu'):
        """:func:`~mmrvos.apis.init_rvos_model`: clear errors, strict, safe loading."""
        if weights is None:
            warnings.warn(f'{self.config_file or "config"}: no weights given, the model is '
                          'randomly initialised (its masks mean nothing)')
        return init_rvos_model(cfg, weights, device=device)

    def _init_collate(self, cfg: Config):
        """Not used: a video is one sample, fed chunk by chunk (:meth:`preprocess`)."""
        return pseudo_collate

    def _init_pipeline(self, cfg: Config) -> VideoTestPipeline:
        return build_video_pipeline(cfg, self.scale)

    def _init_visualizer(self, cfg: Config) -> RVOSLocalVisualizer:
        """An ``RVOSLocalVisualizer`` of its own (the config's settings when the config
        names one; its backends are not needed: drawings go to the overlay video)."""
        vis = cfg.get('visualizer')
        kwargs = {}
        if isinstance(vis, dict) and str(vis.get('type', '')).rsplit('.', 1)[-1] == \
                RVOSLocalVisualizer.__name__:
            kwargs = {
                k: v
                for k, v in vis.items() if k not in ('type', 'name', 'vis_backends', 'save_dir')
            }
        name = f'rvos_inferencer_{datetime.now().timestamp()}_{id(self)}'
        return RVOSLocalVisualizer.get_instance(name, **kwargs)

    # ------------------------------------------------------------------ steps
    def preprocess(self, inputs: FrameSource, batch_size: int = 1, **kwargs) -> LazyVideoTensor:
        """The video as a lazy (T, 3, H, W) tensor through the test pipeline."""
        device = next(self.model.parameters()).device
        return LazyVideoTensor(inputs, self.pipeline, self.model.data_preprocessor, device)

    def forward(self,
                inputs: LazyVideoTensor,
                texts: Sequence[str] = (),
                on_frame=None,
                **kwargs) -> int:
        """Segment ``texts`` in the video; each frame's merged results
        (:func:`merge_frame_result`) go to ``on_frame`` in frame order."""
        return stream_video(self.model, inputs, list(texts),
                            lambda res: on_frame(merge_frame_result(res)))

    def visualize(self,
                  inputs: Sequence[np.ndarray],
                  preds: Sequence[Dict],
                  show: bool = False,
                  wait_time: float = 0,
                  texts: Sequence[str] = (),
                  **kwargs) -> List[np.ndarray]:
        """Drawings (RGB) of frames (``inputs``, BGR) with their merged results: every
        expression's mask and box in its colour, captioned with the expression and score."""
        drawn = []
        for frame, res in zip(inputs, preds):
            captions = [f'{t} ({s:.2f})' for t, s in zip(texts, res['scores'])]
            img = self.visualizer.draw_frame(
                np.ascontiguousarray(frame[..., ::-1]), res['masks'], list(res['boxes']), captions)
            if show:
                self.visualizer.show(img, win_name=str(res['name']), wait_time=wait_time)
            drawn.append(img)
        return drawn

    def postprocess(self,
                    preds: _Predictions,
                    visualization: Optional[str] = None,
                    return_datasample: bool = False,
                    summary: Optional[dict] = None,
                    **kwargs) -> dict:
        return dict(predictions=preds.results(), visualization=visualization, summary=summary)

    # ------------------------------------------------------------------ call
    def __call__(self,
                 inputs: VideoLike,
                 texts: Union[str, Sequence[str]],
                 out_dir: Optional[str] = None,
                 overwrite: bool = False,
                 return_masks: bool = True,
                 video_format: str = 'mp4',
                 fps: Optional[float] = None) -> dict:
        """Segment each expression in every frame of a video.

        Args:
            inputs: a video file (mp4, avi, ...), a folder of frames (numeric order), a list
                of image paths or a ``FrameSource``.
            texts (str | list[str]): the E referring expressions.
            out_dir (str, optional): write ``exp<i>/<frame>.png`` masks (0/255),
                ``overlay.<video_format>`` and ``results.json`` there
                (:mod:`~mmrvos.apis.result_writer`), into a temporary folder moved into place
                once complete. An existing non-empty ``out_dir`` is refused unless
                ``overwrite`` and it holds nothing but an earlier inferencer output.
            overwrite (bool): replace an earlier output in ``out_dir``.
            return_masks (bool): return the (T, H, W) masks (False for long videos: they are
                then only written to ``out_dir``).
            video_format (str): overlay format, 'mp4' (every frame) or 'gif' (at most 300).
            fps (float, optional): overlay frame rate; default: the video file's, else 6.

        Returns:
            dict: ``predictions``: per expression a dict with ``text``, ``frame_names`` (T),
            ``masks`` (T, H, W) bool at the video's size (if ``return_masks``), ``boxes``
            (T, 4) float32 xyxy pixels, ``scores`` (T,) float32; ``visualization``: the
            overlay video's path (or None); ``summary``: what ``results.json`` holds (video,
            config, weights, frames, seconds, fps; with ``out_dir``, per-frame records).

        Raises:
            FileNotFoundError / ValueError / OSError: a bad video, frame, expression or
                output folder, naming it (checked before the model runs where possible).
        """
        texts = check_texts(texts)
        if video_format not in VIDEO_FORMATS:
            raise ValueError(f'video_format must be one of {VIDEO_FORMATS}, got '
                             f'{video_format!r}')
        if fps is not None and not (isinstance(fps,
                                               (int, float)) and math.isfinite(fps) and fps > 0):
            raise ValueError(f'fps must be a positive number, got {fps!r}')
        staged = None
        if out_dir is not None:
            staged = StagedOutputDir(out_dir, overwrite, expected=INFERENCE_OUTPUTS)
            staged.check()  # before any work
        source = open_video(inputs)  # checks every frame's header and tail: fails early
        video = self.preprocess(source)
        progress = _Progress(len(source), self.show_progress)
        video.on_read = progress.read
        preds = _Predictions(texts, return_masks)
        summary = dict(
            video=inputs if isinstance(inputs, str) else source.description,
            config=self.config_file,
            weights=self.weights,
            frames=len(source))
        overlay = None
        t0 = time.time()
        with (staged if staged is not None else contextlib.nullcontext()) as tmp:
            writer = None
            if tmp is not None:
                writer = RVOSResultWriter(
                    tmp, texts, source.reader(),
                    lambda frame, res: self.visualize([frame], [res], texts=texts)[0], video_format,
                    fps or source.fps or DEFAULT_FPS)

            def on_frame(res: Dict) -> None:
                preds.add(res)
                if writer is not None:
                    writer.add(res)
                progress.result()

            progress.start()
            self.forward(video, texts, on_frame)
            seconds = max(time.time() - t0, 1e-6)
            summary.update(seconds=seconds, fps=len(source) / seconds)
            if writer is not None:
                summary = writer.close(summary, final_dir=out_dir)
                overlay = osp.join(out_dir, f'overlay.{video_format}')
        return self.postprocess(preds, overlay, summary=summary)


__all__ = ['RVOSInferencer', 'resolve_model', 'find_metafile_model', 'merge_frame_result']

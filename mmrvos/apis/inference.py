"""High-level inference: build a model from a config and segment expressions in a video."""
import glob
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.config import Config
from mmengine.runner import load_checkpoint

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp')


def init_rvos_model(config: Union[str, Config], checkpoint: Optional[str] = None,
                    device: str = 'cpu', cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build a model from a config file (or Config) and optionally load a checkpoint.

    The checkpoint must cover every parameter of the model: missing or unexpected keys raise
    an error instead of leaving weights silently at their initialisation.
    """
    import mmrvos  # noqa: F401  (registration)

    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = MODELS.build(cfg.model)
    from mmrvos.engine.checkpoint import safe_checkpoint_loaders
    with safe_checkpoint_loaders():  # weights_only=True for init_cfg weights and checkpoint
        model.init_weights()
        if checkpoint is not None:
            load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    model.cfg = cfg
    return model.to(device).eval()


def load_video(video: Union[str, Sequence[str]]) -> Tuple[List[np.ndarray], List[str]]:
    """Read a video as BGR frames.

    Args:
        video: a folder of frames (sorted by name), a video file (mp4, avi, ...) or a list of
            image paths.

    Returns:
        tuple: frames (list of (H, W, 3) uint8 BGR arrays) and frame names (file stems, or
        5-digit indices for a video file).
    """
    if isinstance(video, (list, tuple)):
        paths = list(video)
    elif osp.isdir(video):
        paths = sorted(p for p in glob.glob(osp.join(video, '*'))
                       if p.lower().endswith(IMAGE_EXTS))
        if not paths:
            raise FileNotFoundError(f'{video}: folder holds no frames ({", ".join(IMAGE_EXTS)})')
    elif osp.isfile(video):
        cap = cv2.VideoCapture(video)
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
        cap.release()
        if not frames:
            raise ValueError(f'{video}: not a readable video (no frame could be decoded)')
        return frames, [f'{i:05d}' for i in range(len(frames))]
    else:
        raise FileNotFoundError(f'{video}: no such video file or frame folder')
    frames = []
    for p in paths:
        img = cv2.imread(p, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f'{p}: unreadable or corrupt image')
        frames.append(img)
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise ValueError(f'{video}: frames have different sizes {sorted(shapes)}')
    return frames, [osp.splitext(osp.basename(p))[0] for p in paths]


def prepare_video(model, frames: List[np.ndarray], scale: Tuple[int, int] = (640, 360)):
    """Resize (keep ratio, short side <= scale[1], long side <= scale[0]) and run the model's
    data preprocessor.

    Returns:
        tuple: (T, 3, H, W) normalised, padded frames and their T ``DetDataSample`` s.
    """
    samples, tensors = [], []
    for i, img in enumerate(frames):
        resized, factor = mmcv.imrescale(img, scale, return_scale=True)
        tensors.append(torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1))))
        samples.append(DetDataSample(metainfo=dict(
            ori_shape=img.shape[:2], img_shape=resized.shape[:2],
            scale_factor=(factor, factor), frame_index=i, ori_video_length=len(frames))))
    clip = TrackDataSample()
    clip.video_data_samples = samples
    data = model.data_preprocessor(dict(inputs=[torch.stack(tensors)], data_samples=[clip]),
                                   False)
    return data['inputs'][0], data['data_samples'][0].video_data_samples


def inference_rvos(model, video: Union[str, Sequence[str]], texts: Union[str, Sequence[str]],
                   scale: Tuple[int, int] = (640, 360)) -> List[Dict]:
    """Segment each expression in ``texts`` in every frame of ``video``.

    The visual backbone runs once per frame chunk for all expressions.

    Returns:
        list[dict]: per expression, ``text``, ``frame_names``, ``masks`` (T, H, W) bool at the
        original size, ``boxes`` (T, k, 4) xyxy, ``scores`` (T, k).
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise ValueError('no expression given')
    for t in texts:
        if not isinstance(t, str) or not t.strip():
            raise ValueError(f'empty expression {t!r}')
    frames, names = load_video(video)
    device = next(model.parameters()).device
    with torch.no_grad():
        inputs, samples = prepare_video(model, frames, scale)
        text_dicts = [model.encode_text([t]) for t in texts]
        per_exp = model.predict_video(inputs.to(device), samples, text_dicts)
    out = []
    for text, results in zip(texts, per_exp):
        out.append(dict(
            text=text, frame_names=names,
            masks=np.stack([r.masks.any(0).cpu().numpy() for r in results]),
            boxes=np.stack([r.bboxes.cpu().numpy() for r in results]),
            scores=np.stack([r.scores.cpu().numpy() for r in results])))
    return out


__all__ = ['init_rvos_model', 'load_video', 'prepare_video', 'inference_rvos']

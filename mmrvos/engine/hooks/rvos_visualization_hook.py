"""Visualization of video predictions during validation and testing (``--show-dir``)."""
import os
import os.path as osp
import re
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmdet.registry import HOOKS
from mmdet.structures import TrackDataSample
from mmengine.dist import is_main_process
from mmengine.fileio import get
from mmengine.hooks import Hook
from mmengine.visualization import Visualizer

from ...visualization import VIDEO_FORMATS, OverlayVideoWriter, RVOSLocalVisualizer


def _safe_name(value, default: str) -> str:
    """A file/folder name from a video / expression / frame id (no separators, no '..')."""
    name = re.sub(r'[\\/]+', '_', str(value)) if value not in (None, '') else default
    return name if name.strip('.') else default


@HOOKS.register_module()
class RVOSVisualizationHook(Hook):
    """Draw the predictions of video clips (``TrackDataSample``) with
    :class:`~mmrvos.visualization.RVOSLocalVisualizer`, mmdet's ``DetVisualizationHook`` for
    referring video segmentation (mmdet's hook reads ``img_path`` from the clip itself and
    fails on video samples).

    Testing (``tools/test.py --show-dir DIR`` sets ``draw=True`` and ``test_out_dir=DIR``):
    every ``interval``-th clip, every ``frame_interval``-th frame is drawn (prediction, and
    the ground truth beside it when the dataset loaded annotations and ``draw_gt``), captioned
    with the expression, and written to
    ``WORK_DIR/TIMESTAMP/DIR/<video_id>/<exp_id>/<frame_id><img_suffix>`` (an absolute ``DIR``
    is used as it is), plus ``<video_id>/<exp_id>.<video_format>`` when ``video_format`` is
    set. Without ``test_out_dir`` the drawings go to the visualizer's backends (or a window
    with ``show``). Validation: the first clip of every ``interval``-th iteration goes to the
    backends.

    Frames are read from ``img_path`` at their original size (the predicted masks' size), or,
    for frames decoded from a video file, taken from the pipeline's input and resized back.
    As mmdet's visualizers, drawing happens on the main process only.

    Args:
        draw (bool): draw at all. Defaults to False.
        interval (int): every ``interval``-th clip (test) / iteration (val). Defaults to 1.
        frame_interval (int): every ``frame_interval``-th frame of a clip. Defaults to 1.
        score_thr (float): predictions scoring below are not drawn. Defaults to 0 (the
            selected object whatever its score, as it is evaluated).
        show (bool): show each drawing in a window. Defaults to False.
        wait_time (float): seconds a shown drawing stays. Defaults to 0.
        test_out_dir (str, optional): where test drawings are written (see above).
        draw_gt (bool): draw the ground truth beside the prediction. Defaults to True.
        img_suffix (str): '.jpg' or '.png'. Defaults to '.jpg'.
        video_format (str, optional): also write each expression's drawings as a 'gif' or
            'mp4' video. Defaults to None.
        fps (float): frame rate of those videos. Defaults to 6.
        backend_args (dict, optional): file backend arguments for reading ``img_path``.
    """

    priority = 'NORMAL'

    def __init__(self,
                 draw: bool = False,
                 interval: int = 1,
                 frame_interval: int = 1,
                 score_thr: float = 0.0,
                 show: bool = False,
                 wait_time: float = 0.,
                 test_out_dir: Optional[str] = None,
                 draw_gt: bool = True,
                 img_suffix: str = '.jpg',
                 video_format: Optional[str] = None,
                 fps: float = 6.0,
                 backend_args: Optional[dict] = None) -> None:
        for key, value in (('interval', interval), ('frame_interval', frame_interval)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'RVOSVisualizationHook: {key} must be a positive integer, '
                                 f'got {value!r}')
        if img_suffix not in ('.jpg', '.png'):
            raise ValueError(f"RVOSVisualizationHook: img_suffix must be '.jpg' or '.png', "
                             f'got {img_suffix!r}')
        if video_format is not None and video_format not in VIDEO_FORMATS:
            raise ValueError(f'RVOSVisualizationHook: video_format must be one of '
                             f'{VIDEO_FORMATS} or None, got {video_format!r}')
        self.draw, self.interval, self.frame_interval = draw, interval, frame_interval
        self.score_thr, self.show, self.wait_time = score_thr, show, wait_time
        self.test_out_dir, self.draw_gt = test_out_dir, draw_gt
        self.img_suffix, self.video_format, self.fps = img_suffix, video_format, fps
        self.backend_args = backend_args
        self._out_dir: Optional[str] = None
        self._visualizer: Optional[RVOSLocalVisualizer] = None

    @property
    def visualizer(self) -> RVOSLocalVisualizer:
        """The runner's visualizer when it is an ``RVOSLocalVisualizer``, else one of our
        own."""
        if self._visualizer is None:
            try:
                current = Visualizer.get_current_instance()
            except RuntimeError:  # no visualizer built yet (no Runner)
                current = None
            self._visualizer = current if isinstance(current, RVOSLocalVisualizer) else \
                RVOSLocalVisualizer.get_instance('rvos_visualization_hook')
        return self._visualizer

    def before_test(self, runner) -> None:
        if self.draw and self.test_out_dir is not None:
            self._out_dir = osp.join(runner.work_dir, runner.timestamp, self.test_out_dir)
            if is_main_process():
                os.makedirs(self._out_dir, exist_ok=True)

    def after_val_iter(self, runner, batch_idx: int, data_batch: dict,
                       outputs: Sequence[TrackDataSample]) -> None:
        if self.draw and is_main_process() and self.every_n_inner_iters(batch_idx, self.interval):
            self._draw_clip(data_batch, 0, outputs[0], None, runner.iter + batch_idx)

    def after_test_iter(self, runner, batch_idx: int, data_batch: dict,
                        outputs: Sequence[TrackDataSample]) -> None:
        if not (self.draw and is_main_process()):
            return
        for n, clip in enumerate(outputs):
            if (batch_idx * len(outputs) + n) % self.interval == 0:
                self._draw_clip(data_batch, n, clip, self._out_dir, batch_idx)

    def _frame_image(self, data_batch: dict, n: int, t: int, sample) -> np.ndarray:
        """Frame t of clip n, (H, W, 3) RGB at its original size."""
        ori_h, ori_w = sample.metainfo['ori_shape'][:2]
        path = sample.metainfo.get('img_path')
        if path:
            img = mmcv.imfrombytes(get(path, backend_args=self.backend_args), channel_order='rgb')
        else:  # decoded from a video file: the pipeline's (resized) input
            inputs = data_batch['inputs'][n][t]
            h, w = sample.metainfo.get('img_shape', inputs.shape[-2:])[:2]
            img = np.ascontiguousarray(inputs[:, :h, :w].permute(1, 2, 0).cpu().numpy())
            img = img[..., ::-1].astype(np.uint8)
        if img.shape[:2] != (ori_h, ori_w):
            img = mmcv.imresize(img, (ori_w, ori_h))
        return np.ascontiguousarray(img)

    def _draw_clip(self, data_batch: dict, n: int, clip: TrackDataSample, out_dir: Optional[str],
                   step: int) -> None:
        meta = clip.metainfo
        video = _safe_name(meta.get('video_id'), f'video{step:05d}')
        exp = _safe_name(meta.get('exp_id'), f'exp{n}')
        frames = list(range(0, len(clip), self.frame_interval))
        writer = None
        if out_dir is not None:
            os.makedirs(osp.join(out_dir, video, exp), exist_ok=True)
            if self.video_format:
                writer = OverlayVideoWriter(
                    osp.join(out_dir, video, f'{exp}.{self.video_format}'),
                    len(frames),
                    fps=self.fps)
        for t in frames:
            sample = clip.video_data_samples[t]
            name = _safe_name(sample.metainfo.get('frame_id'), f'{t:05d}')
            drawn = self.visualizer.draw_datasample(
                self._frame_image(data_batch, n, t, sample),
                sample,
                draw_gt=self.draw_gt,
                draw_pred=True,
                pred_score_thr=self.score_thr)
            out_file = None if out_dir is None else \
                osp.join(out_dir, video, exp, name + self.img_suffix)
            self.visualizer.add_datasample(
                f'{video}/{exp}/{name}',
                drawn,
                None,
                show=self.show,
                wait_time=self.wait_time,
                out_file=out_file,
                step=step)
            if writer is not None:
                writer.add(drawn)
        if writer is not None:
            writer.close()

"""The one visualizer of mmrvos: referred objects and their expressions on video frames."""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmdet.registry import VISUALIZERS
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.dist import master_only
from mmengine.visualization import Visualizer

# RGB, one colour per expression (cycled)
PALETTE = [(220, 20, 60), (0, 130, 255), (0, 200, 80), (255, 160, 0), (170, 0, 255), (0, 210, 210)]
GT_COLOR = (255, 255, 255)  # RGB, ground truth beside a prediction
Color = Tuple[int, int, int]


def _as_masks(masks) -> np.ndarray:
    """(k, H, W) bool array from a tensor, an array or mmdet ``BitmapMasks``."""
    masks = getattr(masks, 'masks', masks)  # BitmapMasks
    if isinstance(masks, torch.Tensor):
        masks = masks.detach().cpu().numpy()
    masks = np.asarray(masks)
    return masks.reshape(-1, *masks.shape[-2:]).astype(bool)


def _as_array(values, width: int) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=np.float32).reshape(-1, width)


@VISUALIZERS.register_module()
class RVOSLocalVisualizer(Visualizer):
    """Draws referred objects (masks, boxes) and their expressions on video frames, with
    mmengine's drawing methods (``draw_binary_masks``, ``draw_bboxes``, ``draw_texts``).

    Used by :class:`~mmrvos.apis.RVOSInferencer` (overlay videos),
    :class:`~mmrvos.engine.hooks.RVOSVisualizationHook` (``tools/test.py --show-dir``) and
    ``tools/misc/browse_rvos_dataset.py``. Images are RGB (H, W, 3) uint8, as mmengine's
    visualizers take them.

    A mask is alpha-blended in its expression's colour: inside the mask a pixel becomes
    ``(1 - alpha) * pixel + alpha * colour``; outside it is unchanged. Boxes are outlined in
    the same colour; captions are written top-left on a dark background, one line per
    expression.

    Args:
        name (str): instance name. Defaults to 'visualizer'.
        image (np.ndarray, optional): the image to draw on.
        vis_backends (list[dict], optional): visual backends (mmengine).
        save_dir (str, optional): where the backends save.
        palette (list[tuple]): RGB colour per expression, cycled. Defaults to :data:`PALETTE`.
        alpha (float): mask opacity in [0, 1]. Defaults to 0.5.
        line_width (float): box line width. Defaults to 2.
        draw_boxes (bool): outline the boxes. Defaults to True.
        font_size (int, optional): caption size (points); default from the image size.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Optional[list] = None,
                 save_dir: Optional[str] = None,
                 palette: Sequence[Color] = PALETTE,
                 alpha: float = 0.5,
                 line_width: float = 2,
                 draw_boxes: bool = True,
                 font_size: Optional[int] = None) -> None:
        super().__init__(name=name, image=image, vis_backends=vis_backends, save_dir=save_dir)
        if not 0 <= alpha <= 1:
            raise ValueError(f'alpha must be in [0, 1], got {alpha}')
        if not palette:
            raise ValueError('palette must hold at least one colour')
        self.palette = [tuple(int(c) for c in color) for color in palette]
        self.alpha, self.line_width = float(alpha), line_width
        self.draw_boxes, self.font_size = draw_boxes, font_size

    def color(self, index: int) -> Color:
        """RGB colour of expression ``index``."""
        return self.palette[index % len(self.palette)]

    # ------------------------------------------------------------------ drawing
    def _caption_size(self) -> int:
        return int(self.font_size or max(8, min(self.height, self.width) // 40))

    def _draw_captions(self,
                       lines: Sequence[str],
                       colors: Sequence[Color],
                       origin: Tuple[float, float] = (2, 2)) -> None:
        """Lines of text top-left (from ``origin``), each on a dark box."""
        size = self._caption_size()
        step = size * self.dpi / 72 * 1.5  # points -> pixels, with spacing
        positions = np.array([[origin[0], origin[1] + i * step] for i in range(len(lines))])
        self.draw_texts(
            list(lines),
            positions,
            font_sizes=size,
            colors=list(colors),
            vertical_alignments='top',
            horizontal_alignments='left',
            bboxes=dict(facecolor='black', alpha=0.6, pad=1, edgecolor='none'))

    def draw_frame(self,
                   image: np.ndarray,
                   masks: Sequence = (),
                   boxes: Optional[Sequence] = None,
                   captions: Optional[Sequence[str]] = None,
                   colors: Optional[Sequence[Color]] = None) -> np.ndarray:
        """Draw E referred objects on one frame.

        Args:
            image (np.ndarray): (H, W, 3) uint8 RGB frame.
            masks (list): E masks, each (H, W) or (k, H, W) bool (array or tensor; None: no
                mask). The k masks of one expression are drawn as their union.
            boxes (list, optional): E boxes, each (4,) or (k, 4) xyxy in pixels (None or a
                degenerate box: not drawn).
            captions (list[str], optional): lines written top-left, line i in colour i.
            colors (list[tuple], optional): E RGB colours (default: the palette).

        Returns:
            np.ndarray: (H, W, 3) uint8 RGB.

        Raises:
            ValueError: a mask of another size than the image.
        """
        image = np.ascontiguousarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'expected an (H, W, 3) image, got shape {image.shape}')
        n = max(len(masks), len(boxes or ()), len(captions or ()))
        colors = list(colors or [])
        colors += [self.color(i) for i in range(len(colors), n)]
        self.set_image(image)
        blend, blend_colors = [], []
        for i, mask in enumerate(masks):
            if mask is None:
                continue
            mask = _as_masks(mask).any(0)
            if mask.shape != image.shape[:2]:
                raise ValueError(f'mask {i} is {mask.shape[1]}x{mask.shape[0]} (WxH), the '
                                 f'image {image.shape[1]}x{image.shape[0]}')
            if mask.any():
                blend.append(mask)
                blend_colors.append(colors[i])
        if blend:  # masks first (the blend is an image layer), in order, in one call
            self.draw_binary_masks(np.stack(blend), colors=blend_colors, alphas=self.alpha)
        if self.draw_boxes:
            for i, box in enumerate(boxes or ()):
                if box is None:
                    continue
                box = _as_array(box, 4).copy()  # drawn clipped to the image
                box[:, 0::2] = box[:, 0::2].clip(0, image.shape[1])
                box[:, 1::2] = box[:, 1::2].clip(0, image.shape[0])
                box = box[(box[:, 2] > box[:, 0]) & (box[:, 3] > box[:, 1])]
                if len(box):
                    self.draw_bboxes(
                        box, edge_colors=[colors[i]] * len(box), line_widths=self.line_width)
        if captions:
            self._draw_captions(captions, colors[:len(captions)])
        return self.get_image()

    def _frame_panels(self,
                      image: np.ndarray,
                      sample: DetDataSample,
                      draw_gt: bool,
                      draw_pred: bool,
                      pred_score_thr: float,
                      label: Optional[str] = None) -> List[np.ndarray]:
        """[ground truth, prediction] panels of one frame (those present and asked for),
        captioned with ``label`` (a clip's frame; the sentence is then in the clip's banner)
        or else the sentence."""
        text = '' if label else (sample.metainfo.get('text') or '')
        head = [label] if label else []
        panels = []
        gt = sample.get('gt_instances') if draw_gt else None
        if gt is not None and 'masks' in gt:
            valid = bool(torch.as_tensor(gt.valid).any()) if 'valid' in gt else True
            flags = ''
            if 'valid' in gt:
                flags = f' v{int(valid)}'
                if 'annotated' in gt:
                    flags += f' a{int(bool(torch.as_tensor(gt.annotated).any()))}'
            masks = [_as_masks(gt.masks)] if valid else []
            boxes = [gt.bboxes] if valid and 'bboxes' in gt else None
            lines = [(label or 'GT') + flags] + ([text] if text else [])
            panels.append(
                self.draw_frame(image, masks, boxes, lines, colors=[GT_COLOR] * len(lines)))
        pred = sample.get('pred_instances') if draw_pred else None
        if pred is not None and 'masks' in pred:
            keep = np.ones(len(pred), bool)
            score = ''
            if 'scores' in pred and len(pred):
                scores = _as_array(pred.scores, 1)[:, 0]
                keep = scores >= pred_score_thr
                score = f' ({scores.max():.2f})'
            masks = [_as_masks(pred.masks)[keep]] if keep.any() else []
            boxes = [_as_array(pred.bboxes, 4)[keep]] if keep.any() and 'bboxes' in pred \
                else None
            lines = head + ([text + score] if text or score else [])
            panels.append(
                self.draw_frame(
                    image, masks, boxes, lines, colors=[self.color(0)] * max(1, len(lines))))
        if not panels:  # nothing to draw: the frame with its label
            lines = head + ([text] if text else [])
            panels.append(self.draw_frame(image, captions=lines, colors=[GT_COLOR] * len(lines)))
        return panels

    def _banner(self, width: int, line: str) -> np.ndarray:
        """(h, width, 3) dark strip with one line of text (a clip's sentence)."""
        size = self._caption_size()
        height = int(size * self.dpi / 72 * 1.6) + 4
        self.set_image(np.zeros((height, width, 3), np.uint8))
        self._draw_captions([line], [GT_COLOR])
        return self.get_image()

    def draw_datasample(self,
                        image: Union[np.ndarray, Sequence[np.ndarray]],
                        data_sample: Union[DetDataSample, TrackDataSample],
                        draw_gt: bool = True,
                        draw_pred: bool = True,
                        pred_score_thr: float = 0.0) -> np.ndarray:
        """The drawing of :meth:`add_datasample`, returned.

        A ``DetDataSample`` (one frame, ``image`` (H, W, 3)): ground truth (white) and
        prediction (palette colour) panels side by side, as mmdet's ``DetLocalVisualizer``;
        each captioned with the expression (and the best score of the prediction). A
        ``TrackDataSample`` (``image``: T frames): the frames' panels side by side, each
        labelled with its frame name (and ``v``/``a``: valid / annotated flags of the target),
        under a banner with the clip's name and sentence.

        Returns:
            np.ndarray: RGB uint8.
        """
        if isinstance(data_sample, TrackDataSample):
            frames = list(image)
            if len(frames) != len(data_sample):
                raise ValueError(f'{len(frames)} images for a clip of {len(data_sample)} frames')
            tiles = []
            for frame, sample in zip(frames, data_sample.video_data_samples):
                label = f'{sample.metainfo.get("frame_id", "")}#' \
                        f'{sample.metainfo.get("frame_index", "")}'
                tiles += self._frame_panels(
                    frame, sample, draw_gt, draw_pred, pred_score_thr, label=label)
            strip = np.concatenate(tiles, axis=1)
            meta = data_sample.metainfo
            line = f'{meta.get("video_id")}/{meta.get("exp_id")}'
            if meta.get('exp_type'):
                line += f' [{meta["exp_type"]}]'
            line += f': {meta.get("text") or ""}'
            return np.concatenate([self._banner(strip.shape[1], line), strip], axis=0)
        panels = self._frame_panels(
            np.asarray(image), data_sample, draw_gt, draw_pred, pred_score_thr)
        return np.concatenate(panels, axis=1)

    @master_only
    def add_datasample(self,
                       name: str,
                       image: Union[np.ndarray, Sequence[np.ndarray]],
                       data_sample: Optional[Union[DetDataSample, TrackDataSample]] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       pred_score_thr: float = 0.0,
                       step: int = 0) -> None:
        """Draw a frame's (``DetDataSample``) or a clip's (``TrackDataSample``) ground truth
        and prediction (:meth:`draw_datasample`); show it, write it to ``out_file``, or else
        hand it to the visual backends, as mmdet's visualizers do.

        Args:
            name (str): image name for the backends and the window.
            image: (H, W, 3) RGB frame, or T of them for a ``TrackDataSample``.
            pred_score_thr (float): predictions scoring below are not drawn. Defaults to 0
                (the model's selection is drawn whatever its score, as it is evaluated).
        """
        import mmcv
        if data_sample is None:
            drawn = np.ascontiguousarray(np.asarray(image))
        else:
            drawn = self.draw_datasample(image, data_sample, draw_gt, draw_pred, pred_score_thr)
        self.set_image(drawn)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(drawn[..., ::-1], out_file)
        else:
            self.add_image(name, drawn, step)


__all__ = ['RVOSLocalVisualizer', 'PALETTE', 'GT_COLOR']

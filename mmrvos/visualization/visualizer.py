"""mmdet visualizer for referring segmentation samples."""
from typing import Optional

import numpy as np
from mmdet.registry import VISUALIZERS
from mmdet.visualization import DetLocalVisualizer

from .overlay import add_caption, overlay_masks


@VISUALIZERS.register_module()
class RVOSLocalVisualizer(DetLocalVisualizer):
    """Draws a frame's referring mask(s) and the expression (used by ``--show-dir``).

    ``add_datasample`` takes one frame (RGB, as mmdet's hooks pass it) and its
    ``DetDataSample``: the predicted masks (and, with ``draw_gt``, the ground-truth mask as a
    second colour) are blended over the frame under a caption with the sentence.
    """

    def add_datasample(self, name: str, image: np.ndarray, data_sample=None,
                       draw_gt: bool = True, draw_pred: bool = True, show: bool = False,
                       wait_time: float = 0, out_file: Optional[str] = None,
                       pred_score_thr: float = 0.3, step: int = 0) -> None:
        bgr = np.ascontiguousarray(image[..., ::-1])
        masks, lines = [], []
        text = data_sample.metainfo.get('text', '') if data_sample is not None else ''
        if draw_pred and data_sample is not None and 'pred_instances' in data_sample:
            pred = data_sample.pred_instances.masks
            if len(pred):
                masks.append(np.asarray(pred.cpu().numpy() if hasattr(pred, 'cpu')
                                        else pred).any(0))
                lines.append(f'pred: {text}')
        if draw_gt and data_sample is not None and 'gt_instances' in data_sample:
            gt = data_sample.gt_instances.masks
            gt = gt.masks if hasattr(gt, 'masks') else np.asarray(gt)
            if len(gt) and gt.shape[-2:] == bgr.shape[:2]:
                masks.append(gt.astype(bool).any(0))
                lines.append('ground truth')
        drawn = add_caption(overlay_masks(bgr, masks), lines or [text])
        self.set_image(drawn[..., ::-1])
        if show:
            self.show(drawn[..., ::-1], win_name=name, wait_time=wait_time)
        if out_file is not None:
            import mmcv
            mmcv.imwrite(drawn, out_file)
        else:
            self.add_image(name, drawn[..., ::-1], step)

"""What :class:`~mmrvos.apis.RVOSInferencer` writes into ``out_dir``, frame by frame.

Layout (``tools/demo.py --out-dir`` is the same)::

    out_dir/exp<i>/<frame>.png   binary mask of expression i (0/255, the frame's size)
    out_dir/overlay.<gif|mp4>    every expression drawn on every frame (RVOSLocalVisualizer)
    out_dir/results.json         per expression and frame: box xyxy (pixels), score, mask area
"""
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from PIL import Image

from mmrvos.visualization import OverlayVideoWriter
from .video_reader import FrameSource

# what an output folder of the inferencer (and of tools/demo.py --stream: results.jsonl) holds
# (an earlier one may be replaced by a new one)
INFERENCE_OUTPUTS = ('exp*', 'overlay.gif', 'overlay.mp4', 'results.json', 'results.jsonl')


class RVOSResultWriter:
    """Write each frame's masks and overlay as its results arrive, then the summary.

    Args:
        out_dir (str): where to write (a staged temporary folder).
        texts (list[str]): the E expressions.
        frames (FrameSource, optional): a reader of its own for the frames (so that a video
            file is decoded sequentially by the model's reader and by this one); None: no
            overlay video.
        draw (callable): ``draw(frame, result)`` -> (H, W, 3) RGB drawing of one frame
            (``frame`` (H, W, 3) BGR, ``result`` as :meth:`add` takes it).
        video_format (str): 'gif' or 'mp4'.
        fps (float): overlay frame rate.
    """

    def __init__(self,
                 out_dir: str,
                 texts: Sequence[str],
                 frames: Optional[FrameSource],
                 draw: Callable[[np.ndarray, Dict], np.ndarray],
                 video_format: str = 'mp4',
                 fps: float = 6.0) -> None:
        self.out_dir, self.texts, self.draw = out_dir, list(texts), draw
        self.exp_dirs = [osp.join(out_dir, f'exp{i}') for i in range(len(texts))]
        for d in self.exp_dirs:
            os.makedirs(d)
        self.overlay = self.frames = None
        if frames is not None:
            self.overlay = OverlayVideoWriter(
                osp.join(out_dir, f'overlay.{video_format}'), len(frames), fps=fps)
            self.frames = frames.iter_frames()
        self.records: List[List[dict]] = [[] for _ in texts]

    def add(self, res: Dict) -> None:
        """One frame's results: ``index``, ``name``, E ``masks`` (H, W) bool, ``boxes`` (E, 4)
        xyxy, ``scores`` (E,)."""
        for i, mask in enumerate(res['masks']):
            Image.fromarray(mask.astype(np.uint8) * 255).save(
                osp.join(self.exp_dirs[i], f'{res["name"]}.png'))
            self.records[i].append(
                dict(
                    frame=res['name'],
                    box=[round(float(v), 2) for v in res['boxes'][i]],
                    score=round(float(res['scores'][i]), 6),
                    area=int(mask.sum())))
        if self.overlay is not None:
            frame = next(self.frames)
            keep = self.overlay.keeps(self.overlay.count)
            self.overlay.add(self.draw(frame, res) if keep else None)

    def close(self, summary: dict, final_dir: Optional[str] = None) -> dict:
        """Finish the overlay and write ``results.json``: ``summary`` plus ``expressions``
        (``text``, ``mask_dir`` under ``final_dir``, where the folder will end up, and the
        per-frame records). Returns what was written."""
        if self.overlay is not None:
            self.overlay.close()
        final_dir = final_dir or self.out_dir
        summary = dict(
            summary,
            expressions=[
                dict(text=t, mask_dir=osp.join(final_dir, f'exp{i}'), frames=self.records[i])
                for i, t in enumerate(self.texts)
            ])
        with open(osp.join(self.out_dir, 'results.json'), 'w') as f:
            json.dump(summary, f, indent=1)
        return summary


__all__ = ['RVOSResultWriter', 'INFERENCE_OUTPUTS']

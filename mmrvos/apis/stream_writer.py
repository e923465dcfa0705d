"""What ``tools/demo.py --stream`` writes, frame by frame, as :class:`RVOSStream` gives it.

Layout (the offline demo's, with per-frame records as JSON lines)::

    out_dir/exp<i>/<frame>.png   binary mask of expression i (0/255, the frame's size)
    out_dir/results.jsonl        one line per frame: frame, index, per expression box xyxy
                                 (pixels), score, mask area, track
    out_dir/overlay.mp4          (optional) every expression drawn on every frame
    out_dir/results.json         written last (also after an error): the run's summary

Every file is complete and closed when :meth:`StreamResultWriter.add` returns (the JSON line
flushed), so an interrupted run keeps every frame it finished. Nothing of the size of the video
is kept in memory.
"""
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from PIL import Image


class StreamResultWriter:
    """Write each frame's masks and record as they come, then a summary.

    Args:
        out_dir (str): the folder (created if missing; must hold no earlier ``exp<i>``).
        texts (list[str]): the E expressions.
        overlay (OverlayVideoWriter, optional): an mp4 writer for the drawn frames.
        draw (callable, optional): ``draw(frame, result)`` -> (H, W, 3) RGB, with ``frame``
            (H, W, 3) BGR and ``result`` as :meth:`add` builds it (``masks``, ``boxes``,
            ``scores``); needed with ``overlay``.
    """

    def __init__(self,
                 out_dir: str,
                 texts: Sequence[str],
                 overlay=None,
                 draw: Optional[Callable[[np.ndarray, Dict], np.ndarray]] = None) -> None:
        self.out_dir, self.texts = out_dir, list(texts)
        self.exp_dirs = [osp.join(out_dir, f'exp{i}') for i in range(len(self.texts))]
        for d in self.exp_dirs:
            os.makedirs(d)
        self.overlay, self.draw = overlay, draw
        self.count = 0
        self._lines = open(osp.join(out_dir, 'results.jsonl'), 'w')

    def add(self, name: str, results: List[dict], frame: Optional[np.ndarray] = None) -> None:
        """One frame: ``results`` per expression (:meth:`RVOSStream.step`: ``mask``, ``box``,
        ``score``, ``track``); ``frame`` (H, W, 3) BGR for the overlay."""
        records = []
        for exp_dir, res in zip(self.exp_dirs, results):
            Image.fromarray(res['mask'].astype(np.uint8) * 255).save(
                osp.join(exp_dir, f'{name}.png'))
            records.append(
                dict(
                    box=[round(float(v), 2) for v in res['box']],
                    score=round(float(res['score']), 6),
                    area=int(res['mask'].sum()),
                    track=int(res['track'])))
        if self.overlay is not None and frame is not None:
            drawn = dict(
                name=name,
                masks=[r['mask'] for r in results],
                boxes=np.stack([r['box'] for r in results]),
                scores=np.array([r['score'] for r in results], np.float32))
            self.overlay.add(self.draw(frame, drawn))
        self._lines.write(
            json.dumps(dict(frame=name, index=self.count, expressions=records)) + '\n')
        self._lines.flush()
        self.count += 1

    def close(self, summary: dict, final_dir: Optional[str] = None) -> dict:
        """Close the files and write ``results.json`` (``summary`` + the expressions and
        where their masks are: under ``final_dir``, where the folder will end up). Returns
        what was written."""
        self._lines.close()
        if self.overlay is not None and self.overlay.count:
            self.overlay.close()
        summary = dict(
            summary,
            frames_written=self.count,
            expressions=[
                dict(text=t, mask_dir=osp.join(final_dir or self.out_dir, f'exp{i}'))
                for i, t in enumerate(self.texts)
            ])
        with open(osp.join(self.out_dir, 'results.json'), 'w') as f:
            json.dump(summary, f, indent=1)
        return summary


__all__ = ['StreamResultWriter']

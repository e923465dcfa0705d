"""Helpers of the web demo tests: a complete tiny checkpoint, a small video file."""
import os.path as osp
from typing import Sequence

from rvos_shell import TOY_CONFIG

from rvos_test_utils import REPO_ROOT


def make_tiny_checkpoint(path: str, seed: int = 0) -> str:
    """A complete checkpoint of the tiny toy model (random weights, fixed seed)."""
    import torch

    from mmrvos.apis import init_rvos_model
    torch.manual_seed(seed)
    model = init_rvos_model(osp.join(REPO_ROOT, TOY_CONFIG))
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def encode_video(frames: Sequence[str], path: str, fps: float = 6.0) -> str:
    """Frames (image files, one size) -> an MPEG-4 ``.mp4`` (OpenCV); checks that it decodes
    to as many frames."""
    import cv2
    images = [cv2.imread(f) for f in frames]
    h, w = images[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
    assert writer.isOpened(), path
    for img in images:
        writer.write(img)
    writer.release()
    cap = cv2.VideoCapture(path)
    count = 0
    while cap.grab():
        count += 1
    cap.release()
    assert count == len(images), f'{path}: {count} frames decoded of {len(images)}'
    return path

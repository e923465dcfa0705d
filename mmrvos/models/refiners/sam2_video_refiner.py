"""SAM 2 mask refinement of a referred object's masks (ReferDINO-Plus' idea), on transformers'
SAM 2 video model."""
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from ..utils.sam2_attention import use_lean_sam2_attention

FUSIONS = ('sam2', 'union')


def build_sam2_video_model(sam2: Union[str, dict, torch.nn.Module]) -> torch.nn.Module:
    """A ``transformers`` ``Sam2VideoModel``: a local checkpoint folder (``from_pretrained``,
    never downloaded), a ``Sam2VideoConfig`` keyword dict (random weights: tests, tiny
    configs) or a model already built (used as it is). The models it builds use
    :func:`~mmrvos.models.utils.sam2_attention.use_lean_sam2_attention` (same outputs)."""
    from transformers import Sam2VideoConfig, Sam2VideoModel
    if isinstance(sam2, torch.nn.Module):
        return sam2
    if isinstance(sam2, dict):
        model = Sam2VideoModel(Sam2VideoConfig(**sam2))
        use_lean_sam2_attention(model)
        return model
    if isinstance(sam2, str):
        import os.path as osp
        if not osp.isdir(sam2):
            raise FileNotFoundError(
                f'SAM 2 refiner: {sam2} is not a folder; give a local transformers SAM 2 '
                "checkpoint (e.g. a download of 'facebook/sam2.1-hiera-large') or a "
                'Sam2VideoConfig dict')
        model = Sam2VideoModel.from_pretrained(sam2, local_files_only=True, use_safetensors=True)
        use_lean_sam2_attention(model)
        return model
    raise TypeError(f'SAM 2 refiner: sam2 must be a folder, a config dict or a module, '
                    f'got {type(sam2).__name__}')


@MODELS.register_module()
class SAM2VideoRefiner(BaseModule):
    """Refine one referred object's per-frame masks with SAM 2's video propagation.

    The detector's mask of its best-scored frame is SAM 2's mask prompt; SAM 2 propagates it
    forward and backward through the video (memory attention over the frames it has
    segmented); each frame then takes SAM 2's mask where SAM 2 is confident that the object
    is there (object score ``>= obj_score_thr``) and keeps the detector's mask elsewhere. The
    prompt frame itself is SAM 2's output for the prompt (the prompt mask, as SAM 2 uses a
    mask prompt as that frame's output).

    Args:
        sam2 (str | dict | nn.Module): a local transformers SAM 2 checkpoint folder, a
            ``Sam2VideoConfig`` keyword dict (random weights) or a ``Sam2VideoModel``.
        image_size (int, optional): SAM 2's input side (frames are resized to a square, as
            SAM 2's own processor does). Default: the model's ``config.image_size``.
        obj_score_thr (float): SAM 2 is confident on a frame when the sigmoid of its object
            score is at least this. Default 0.5 (SAM 2's own "object present" line).
        fusion (str): on confident frames, ``'sam2'`` (SAM 2's mask) or ``'union'`` (SAM 2's
            mask or the detector's).
        mask_thr (float): SAM 2 mask logit threshold. Default 0.
    """

    def __init__(self,
                 sam2: Union[str, dict, torch.nn.Module],
                 image_size: Optional[int] = None,
                 obj_score_thr: float = 0.5,
                 fusion: str = 'sam2',
                 mask_thr: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if fusion not in FUSIONS:
            raise ValueError(f'SAM 2 refiner: fusion must be one of {FUSIONS}, got {fusion!r}')
        if not 0.0 <= float(obj_score_thr) <= 1.0:
            raise ValueError(f'SAM 2 refiner: obj_score_thr must be in [0, 1], got '
                             f'{obj_score_thr!r}')
        self.sam2 = build_sam2_video_model(sam2).eval()
        self.image_size = int(image_size or self.sam2.config.image_size)
        self.obj_score_thr = float(obj_score_thr)
        self.fusion = fusion
        self.mask_thr = float(mask_thr)

    # ------------------------------------------------------------------ SAM 2
    def prepare_frames(self, frames: Tensor) -> Tensor:
        """(T, 3, h, w) ImageNet-normalised RGB frames (the detectors' input; SAM 2 uses the
        same normalisation) -> (T, 3, S, S) float32 at SAM 2's input size."""
        return F.interpolate(
            frames.float(), size=(self.image_size, ) * 2, mode='bilinear', align_corners=False)

    def prepare_prompt(self, mask: Tensor) -> Tensor:
        """(H, W) bool mask -> (1, 1, S, S) 0/1 float: resized with antialiasing, >= 0.5 (what
        SAM 2's video processor does with a mask prompt)."""
        resized = F.interpolate(
            mask[None, None].float(),
            size=(self.image_size, ) * 2,
            mode='bilinear',
            align_corners=False,
            antialias=True)
        return (resized >= 0.5).float()

    @torch.no_grad()
    def propagate(self, frames: Tensor, prompt_frame: int,
                  prompt_mask: Tensor) -> Tuple[Tensor, Tensor]:
        """SAM 2 on a video prompted with a mask on one frame, forward then backward.

        Args:
            frames (Tensor): (T, 3, S, S) from :meth:`prepare_frames`.
            prompt_frame (int): the prompted frame.
            prompt_mask (Tensor): (1, 1, S, S) from :meth:`prepare_prompt`.

        Returns:
            tuple: mask logits (T, S/4, S/4) and object score logits (T,).
        """
        from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession
        num = len(frames)
        device = next(self.sam2.parameters()).device
        session = Sam2VideoInferenceSession(
            video=frames,
            video_height=self.image_size,
            video_width=self.image_size,
            inference_device=device,
            inference_state_device=device,
            video_storage_device=device,
            dtype=torch.float32)
        obj = session.obj_id_to_idx(1)
        session.add_mask_inputs(obj, prompt_frame, prompt_mask)
        session.obj_with_new_inputs = [1]
        logits: Dict[int, Tensor] = {}
        order = [(prompt_frame, False)] + [(t, False) for t in range(prompt_frame + 1, num)] + \
            [(t, True) for t in range(prompt_frame - 1, -1, -1)]
        for t, reverse in order:
            logits[t] = self.sam2(
                inference_session=session, frame_idx=t, reverse=reverse).pred_masks[0, 0]
        scores = [
            session.get_output(obj, t, 'object_score_logits', t == prompt_frame).reshape(())
            for t in range(num)
        ]
        return torch.stack([logits[t] for t in range(num)]).float(), torch.stack(scores).float()

    # ------------------------------------------------------------------ refinement
    def fuse(self, masks: Tensor, sam_masks: Tensor, confident: Tensor) -> Tensor:
        """Per frame: SAM 2's mask (``fusion='sam2'``) or SAM 2's mask or the detector's
        (``'union'``) where ``confident``; the detector's mask elsewhere.

        Args:
            masks, sam_masks (Tensor): (T, H, W) bool. confident (Tensor): (T,) bool.
        """
        refined = sam_masks | masks if self.fusion == 'union' else sam_masks
        return torch.where(confident[:, None, None], refined, masks)

    def refine(self, frames: Tensor, masks: Tensor, scores: Tensor) -> Tuple[Tensor, dict]:
        """Refine the masks of one object through the video.

        Args:
            frames (Tensor): (T, 3, h, w) ImageNet-normalised RGB frames (any size; e.g. the
                detector's resized input without its padding).
            masks (Tensor): (T, H, W) bool, the detector's masks at the output size.
            scores (Tensor): (T,) the detector's per-frame scores of that object.

        Returns:
            tuple: the refined (T, H, W) bool masks, and a dict: ``prompt_frame`` (int, -1
            when no frame has a mask: nothing to prompt, masks unchanged), ``confident`` (T,)
            bool, ``sam_masks`` (T, H, W) bool.
        """
        if not (len(frames) == len(masks) == len(scores)):
            raise ValueError(f'SAM 2 refiner: {len(frames)} frames, {len(masks)} masks and '
                             f'{len(scores)} scores')
        masks = masks.bool()
        has_mask = masks.flatten(1).any(1)
        if not bool(has_mask.any()):
            return masks, dict(
                prompt_frame=-1,
                confident=torch.zeros_like(has_mask),
                sam_masks=torch.zeros_like(masks))
        ranked = torch.where(has_mask, scores.float(), scores.new_full(scores.shape, -1e9))
        prompt_frame = int(ranked.argmax())
        logits, obj_scores = self.propagate(
            self.prepare_frames(frames), prompt_frame, self.prepare_prompt(masks[prompt_frame]))
        up = F.interpolate(
            logits[:, None].to(masks.device),
            size=masks.shape[-2:],
            mode='bilinear',
            align_corners=False)[:, 0]
        sam_masks = up > self.mask_thr
        confident = obj_scores.sigmoid().to(masks.device) >= self.obj_score_thr
        return self.fuse(masks, sam_masks, confident), dict(
            prompt_frame=prompt_frame, confident=confident, sam_masks=sam_masks)

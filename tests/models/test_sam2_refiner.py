"""SAM2VideoRefiner: SAM 2 (transformers' video model, tiny random config) propagates the
detector's best-scored mask through the video; frames take SAM 2's mask only where SAM 2 is
confident. The reference is transformers' own public propagation API."""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from rvos_test_utils import TINY_SAM2

MEAN = torch.tensor([123.675, 116.28, 103.53])[:, None, None]
STD = torch.tensor([58.395, 57.12, 57.375])[:, None, None]


def build(**kwargs):
    from mmrvos.models.refiners import SAM2VideoRefiner
    torch.manual_seed(0)
    return SAM2VideoRefiner(TINY_SAM2, **kwargs)


def judo_clip(root, num=4, size=(96, 54)):
    """(T, 3, h, w) normalised RGB frames (reduced), and the annotated person of frame 0
    (480, 854) as the hand-made prompt."""
    frames = []
    for t in range(num):
        img = Image.open(osp.join(root, 'JPEGImages', 'judo', f'{t:05d}.jpg')).convert('RGB')
        arr = torch.from_numpy(np.array(img.resize(size, Image.BILINEAR))).permute(2, 0, 1)
        frames.append((arr.float() - MEAN) / STD)
    ann = np.asarray(Image.open(osp.join(root, 'Annotations', 'judo', '00000.png')))
    return torch.stack(frames), torch.from_numpy(ann == 1)


def reference_sam2(model, frames, prompt_frame, prompt):
    """transformers' own API: a session, the mask prompt, then ``propagate_in_video_iterator``
    forward and backward. Returns (T, S/4, S/4) logits and (T,) object score logits."""
    from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession
    size = model.config.image_size
    video = F.interpolate(frames, size=(size, size), mode='bilinear', align_corners=False)
    session = Sam2VideoInferenceSession(
        video=video, video_height=size, video_width=size, dtype=torch.float32)
    obj = session.obj_id_to_idx(1)
    session.add_mask_inputs(obj, prompt_frame, prompt)
    session.obj_with_new_inputs = [1]
    out = {prompt_frame: model(inference_session=session, frame_idx=prompt_frame).pred_masks}
    for reverse in (False, True):
        for res in model.propagate_in_video_iterator(
                session, start_frame_idx=prompt_frame, reverse=reverse):
            out[res.frame_idx] = res.pred_masks
    scores = [
        session.get_output(obj, t, 'object_score_logits', t == prompt_frame).reshape(())
        for t in range(len(frames))
    ]
    return torch.stack([out[t][0, 0] for t in range(len(frames))]), torch.stack(scores)


def test_prompt_frame_is_sam2s_own_output_and_frames_follow_its_confidence(judo_root):
    frames, person = judo_clip(judo_root)
    h, w = person.shape
    # the detector's masks: the person on frame 0 (best score), a wrong box on the others
    masks = torch.zeros(len(frames), h, w, dtype=torch.bool)
    masks[0] = person
    masks[1:, 300:400, 100:300] = True
    scores = torch.tensor([0.9, 0.4, 0.3, 0.2])
    refiner = build()
    # independent: SAM 2 through transformers' own propagation, the same prompt
    prompt = (F.interpolate(
        person[None, None].float(),
        size=(64, 64),
        mode='bilinear',
        align_corners=False,
        antialias=True) >= 0.5).float()
    logits, obj_scores = reference_sam2(refiner.sam2, frames, 0, prompt)
    sam = F.interpolate(
        logits[:, None], size=(h, w), mode='bilinear', align_corners=False)[:, 0] > 0
    # the random SAM 2 is sure of the prompted frame only (sigmoid 1.0 vs ~0.50 on the
    # propagated ones): 0.5 trusts every frame, 0.6 only the prompted one
    seen = []
    for thr in (0.5, 0.6):
        refiner.obj_score_thr = thr
        refined, info = refiner.refine(frames, masks, scores)
        assert info['prompt_frame'] == 0
        confident = obj_scores.sigmoid() >= thr
        assert torch.equal(info['confident'], confident)
        # frame 0: exactly SAM 2's own output for the prompt, which is the prompt itself
        # (SAM 2 uses a mask prompt as the frame's output), up to the round trip through
        # 16x16 logits (SAM 2 at 1024: 256x256)
        assert torch.equal(refined[0], sam[0])
        iou = (refined[0] & person).sum() / (refined[0] | person).sum()
        assert iou > 0.75
        for t in range(len(frames)):
            expected = sam[t] if confident[t] else masks[t]
            assert torch.equal(refined[t], expected), (thr, t)
        seen.append(confident.tolist())
    assert seen == [[True] * 4, [True, False, False, False]]


def test_fusion_rules_and_the_prompt_choice():
    refiner = build(fusion='union')
    det = torch.zeros(3, 4, 4, dtype=torch.bool)
    det[:, 0, 0] = True
    sam = torch.zeros(3, 4, 4, dtype=torch.bool)
    sam[:, 3, 3] = True
    confident = torch.tensor([True, False, True])
    union = refiner.fuse(det, sam, confident)
    assert torch.equal(union[0], det[0] | sam[0]) and torch.equal(union[1], det[1])
    refiner.fusion = 'sam2'
    only = refiner.fuse(det, sam, confident)
    assert torch.equal(only[2], sam[2]) and torch.equal(only[1], det[1])
    # no mask on any frame: nothing to prompt, the masks come back unchanged
    frames = torch.randn(3, 3, 16, 16)
    empty = torch.zeros(3, 8, 8, dtype=torch.bool)
    out, info = refiner.refine(frames, empty, torch.tensor([0.9, 0.5, 0.1]))
    assert info['prompt_frame'] == -1 and torch.equal(out, empty)
    # the prompt is the best-scored frame that has a mask
    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[2, 2:6, 2:6] = True
    _, info = refiner.refine(frames, masks, torch.tensor([0.9, 0.5, 0.1]))
    assert info['prompt_frame'] == 2


def test_bad_arguments_are_named(tmp_path):
    from mmrvos.models.refiners import SAM2VideoRefiner
    with pytest.raises(ValueError, match='fusion'):
        SAM2VideoRefiner(TINY_SAM2, fusion='vote')
    with pytest.raises(ValueError, match='obj_score_thr'):
        SAM2VideoRefiner(TINY_SAM2, obj_score_thr=2)
    missing = str(tmp_path / 'no_sam2')
    with pytest.raises(FileNotFoundError, match='no_sam2'):
        SAM2VideoRefiner(missing)
    with pytest.raises(ValueError, match='3 frames, 2 masks'):
        build().refine(
            torch.zeros(3, 3, 8, 8), torch.zeros(2, 8, 8, dtype=torch.bool), torch.zeros(3))


@torch.no_grad()
def test_referdino_test_cfg_refiner_changes_masks_only_where_sam2_is_confident():
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.config import Config

    from rvos_test_utils import TINY_CONFIG
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(TINY_CONFIG).model)
    model.init_weights()
    model.eval()
    assert model.test_cfg['refiner'] is None and model.refiner is None  # off by default
    samples = [
        DetDataSample(
            metainfo=dict(
                img_shape=(64, 96), ori_shape=(64, 96), batch_input_shape=(64, 96), frame_index=i))
        for i in range(3)
    ]
    gen = torch.Generator().manual_seed(0)
    video = torch.randn(3, 3, 64, 96, generator=gen)
    text = [model.encode_text(['the red circle'])]
    plain = model.predict_video(video, samples, text)[0]
    plain_masks = torch.stack([r.masks.any(0) for r in plain])
    assert plain_masks.any(), 'the random detector predicts no mask: nothing to refine'
    keys = set(model.state_dict())
    for thr, confident in ((1.0, [False] * 3), (0.5, [True] * 3)):
        model.test_cfg['refiner'] = dict(type='SAM2VideoRefiner', sam2=TINY_SAM2, obj_score_thr=thr)
        torch.manual_seed(0)
        refined = model.predict_video(video, samples, text)[0]
        assert model.refiner.obj_score_thr == thr  # rebuilt when test_cfg.refiner changes
        assert model.refiner is model.refiner  # built once per setting
        assert set(model.state_dict()) == keys  # SAM 2 is not part of ReferDINO's weights
        masks = torch.stack([r.masks[0] for r in refined])
        assert all(len(r.masks) == 1 for r in refined)
        # the same decision and masks as the refiner alone on the same frames and masks
        scores = torch.stack([r.scores.max() for r in plain])
        expected, info = model.refiner.refine(video, plain_masks, scores)
        assert info['confident'].tolist() == confident
        assert torch.equal(masks, expected)
        if thr == 1.0:  # SAM 2 never sure (the prompt frame scores sigmoid(10) < 1)
            assert torch.equal(masks, plain_masks)
        else:
            assert torch.equal(masks, info['sam_masks'])
        for r, m in zip(refined, masks):  # boxes enclose the refined masks
            if m.any():
                ys, xs = torch.where(m)
                assert r.bboxes[0].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]

"""Train a tiny SAM 2 (transformers ``Sam2VideoModel``) from scratch on the toy benchmark as a
mask-prompted video object tracker, and save it as a transformers folder for
``SAM2VideoRefiner`` / ``tools/demo.py --refine`` / ``test_cfg.refiner``.

The refiner's real SAM 2 weights cannot be downloaded in an offline setting; this trains the
CPU stand-in the synthetic benchmark needs to measure the refiner honestly: the same task SAM 2
does inside the refiner (a GT mask prompt on one frame, then memory-attention tracking through
the clip, forward or backward in time).

    python tools/make_toy_dataset.py data/toy_rvos          # once
    python tools/misc/train_toy_sam2.py work_dirs/toy_sam2 [--iters 1500] [--image-size 128]

Per step: a clip of T frames from the toy train split (random order: forward or reversed, so
both propagation directions are trained), the first frame with the target is the prompt (its
GT mask through SAM 2's mask-as-output path, as at inference), every later frame is segmented
from SAM 2's memory (single-mask output) and scored with SAM 2's losses: focal (x20) + Dice on
the frames where the target is visible, and a binary cross-entropy on the object score.
"""
import argparse
import os
import os.path as osp
import random
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def toy_sam2_config(size: int) -> dict:
    """A 1.4 M-parameter SAM 2 at ``size`` x ``size`` (a multiple of 64): Hiera of width 16,
    C = 128, one memory-attention layer, 3 memories, single-mask tracking output."""
    if size % 64:
        raise SystemExit(f'error: --image-size must be a multiple of 64, got {size}')
    return dict(
        vision_config=dict(
            backbone_config=dict(
                hidden_size=16,
                num_attention_heads=1,
                image_size=[size, size],
                blocks_per_stage=[1, 1, 2, 1],
                embed_dim_per_stage=[16, 32, 64, 128],
                num_attention_heads_per_stage=[1, 1, 2, 2],
                window_size_per_stage=[4, 2, 2, 2],
                global_attention_blocks=[3],
                window_positional_embedding_background_size=[2, 2]),
            backbone_channel_list=[128, 64, 32, 16],
            backbone_feature_sizes=[[size // 4] * 2, [size // 8] * 2, [size // 16] * 2],
            fpn_hidden_size=128),
        prompt_encoder_config=dict(
            hidden_size=128, image_size=size, patch_size=16, mask_input_channels=8),
        mask_decoder_config=dict(
            hidden_size=128,
            mlp_dim=256,
            num_attention_heads=2,
            iou_head_hidden_dim=64,
            dynamic_multimask_via_stability=False),
        image_size=size,
        memory_attention_hidden_size=128,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=256,
        memory_attention_rope_feat_sizes=[size // 16] * 2,
        memory_encoder_hidden_size=128,
        memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=128,
        memory_fuser_num_layers=1,
        memory_fuser_embed_dim=128,
        memory_fuser_intermediate_dim=256,
        num_maskmem=3,
        multimask_output_for_tracking=False)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='transformers folder to write (new, or --overwrite)')
    parser.add_argument('--data-root', default='data/toy_rvos/')
    parser.add_argument('--iters', type=int, default=1500)
    parser.add_argument('--image-size', type=int, default=128)
    parser.add_argument('--num-frames', type=int, default=5)
    parser.add_argument('--lr', type=float, default=5e-4)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args(argv)
    if args.iters < 1:
        parser.error('--iters must be >= 1')
    if args.num_frames < 2:
        parser.error('--num-frames must be >= 2')
    if osp.exists(args.out_dir) and os.listdir(args.out_dir) and not args.overwrite:
        parser.error(f'{args.out_dir} exists and is not empty; pass --overwrite to replace it')
    if not osp.isdir(osp.join(args.data_root, 'train')):
        parser.error(f'--data-root {args.data_root}: no train/ split (make it with '
                     'python tools/make_toy_dataset.py)')
    return args


def build_dataset(args):
    """The toy train split, frames resized to the square SAM 2 input (aspect not kept)."""
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS, init_default_scope
    from torch.utils.data import DataLoader

    import mmrvos  # noqa: F401
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', 'toy_rvos.py'))
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.data_root = args.data_root
    size = args.image_size
    ds_cfg.pipeline = [
        dict(type='ClipSample', num_frames=args.num_frames, local_range=3, reverse_prob=0.5),
        dict(
            type='TransformBroadcaster',
            share_random_params=True,
            transforms=[
                dict(type='LoadRVOSFrame'),
                dict(type='LoadRVOSAnnotations'),
                dict(type='RVOSRandomFlip', prob=0.5),
                dict(type='Resize', scale=(size, size), keep_ratio=False),
            ]),
        dict(type='FilterClipWithoutTarget'),
        dict(type='PackRVOSInputs'),
    ]
    dataset = DATASETS.build(ds_cfg)
    return DataLoader(dataset, batch_size=1, shuffle=True, collate_fn=pseudo_collate, num_workers=0)


def clip_tensors(batch, size):
    """Normalised frames (T, 3, S, S), GT masks (T, S, S) and visibility (T,) of a batch of
    one clip."""
    import torch
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    frames = batch['inputs'][0].float()[:, [2, 1, 0]]  # BGR -> RGB
    frames = (frames - mean) / std
    masks, valid = [], []
    for frame in batch['data_samples'][0].video_data_samples:
        gt = frame.gt_instances
        m = torch.zeros(size, size)
        if len(gt):
            t = gt.masks.to_tensor(torch.float32, 'cpu')[0]
            m[:t.shape[0], :t.shape[1]] = t[:size, :size]
        masks.append(m)
        valid.append(bool(len(gt)) and bool(torch.as_tensor(gt.valid).reshape(-1)[0]))
    return frames, torch.stack(masks), torch.tensor(valid)


def track_losses(model, frames, masks, valid):
    """SAM 2's losses of one clip tracked from its first visible frame."""
    import torch.nn.functional as F

    from mmrvos.models.utils import frame_slice, new_track_state, remember, sam2_frame_features
    first = int(valid.float().argmax())
    frames, masks, valid = frames[first:], masks[first:], valid[first:]
    num = len(frames)
    feats, pos = sam2_frame_features(model, frames)
    state = new_track_state()
    loss_mask = frames.new_zeros(())
    loss_obj = frames.new_zeros(())
    for t in range(num):
        cur, high_res = frame_slice(model, feats, t)
        if t == 0:  # the prompt: its mask is the frame's output (as SAM 2 does at inference)
            pix = cur[-1].permute(1, 2, 0).reshape(1, -1, *model.backbone_feature_sizes[-1])
            res = model._use_mask_as_output(pix, high_res, masks[0][None, None])
        else:
            pix = model._prepare_memory_conditioned_features(state, t, 0, False, cur[-1],
                                                             pos[-1][:, t:t + 1], num)
            res = model._single_frame_forward(
                image_embeddings=high_res + [pix], multimask_output=False)
            logits = res.high_res_masks.reshape(1, -1)
            obj = res.object_score_logits.reshape(1)
            loss_obj = loss_obj + F.binary_cross_entropy_with_logits(obj, valid[t:t + 1].float())
            if valid[t]:
                gt = masks[t].reshape(1, -1)
                prob = logits.sigmoid()
                ce = F.binary_cross_entropy_with_logits(logits, gt, reduction='none')
                p_t = prob * gt + (1 - prob) * (1 - gt)
                focal = (ce * (1 - p_t)**2 * (0.25 * gt + 0.75 * (1 - gt))).mean()
                dice = 1 - (2 * (prob * gt).sum() + 1) / (prob.sum() + gt.sum() + 1)
                loss_mask = loss_mask + 20 * focal + dice
        mem, mem_pos = model._encode_new_memory(cur[-1], res.high_res_masks,
                                                res.object_score_logits, t == 0)
        remember(state, t, t == 0, res.object_pointer, mem, mem_pos)
    steps = max(num - 1, 1)
    return loss_mask / steps, loss_obj / steps


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, REPO)
    import numpy as np
    import torch
    from transformers import Sam2VideoConfig, Sam2VideoModel

    from mmrvos.models.utils.sam2_attention import use_lean_sam2_attention
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    loader = build_dataset(args)
    model = Sam2VideoModel(Sam2VideoConfig(**toy_sam2_config(args.image_size))).train()
    use_lean_sam2_attention(model)  # same outputs, less work
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    decay_at = int(args.iters * 0.8)
    it, start, log = 0, time.time(), []
    while it < args.iters:
        for batch in loader:
            frames, masks, valid = clip_tensors(batch, args.image_size)
            lr = args.lr * (min(1.0, 0.1 + 0.9 * it / 100)) * (0.1 if it >= decay_at else 1.0)
            for group in optimizer.param_groups:
                group['lr'] = lr
            loss_mask, loss_obj = track_losses(model, frames, masks, valid)
            loss = loss_mask + loss_obj
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            log.append((loss_mask.item(), loss_obj.item()))
            it += 1
            if it % 50 == 0 or it == args.iters:
                recent = np.mean(log[-50:], axis=0)
                print(
                    f'iter {it}/{args.iters}  loss_mask {recent[0]:.4f}  loss_object '
                    f'{recent[1]:.4f}  lr {lr:.2e}  {time.time() - start:.0f}s',
                    flush=True)
            if it >= args.iters:
                break
    model.eval()
    # the new folder is complete before an existing one (--overwrite) is moved away
    import shutil
    out = args.out_dir.rstrip('/')
    tmp, old = out + '.partial', out + '.old'
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    if osp.exists(out):
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    print(f'saved {args.out_dir} ({sum(p.numel() for p in model.parameters()):,} parameters, '
          f'{args.iters} iterations, {time.time() - start:.0f}s)')


if __name__ == '__main__':
    main()

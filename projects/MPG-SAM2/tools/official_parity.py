"""Run the official MPG-SAM 2 and mmrvos' MPG-SAM 2 on the same clip and compare them.

The official ``EvfSamModel`` is built from its own code (``--official-repo``, a checkout of
``rongfu-dsb/MPG-SAM2``, imported as ``official_manifest.py`` does, never modified) with its own
random initialisation (seed ``--seed``; the released weights are 3.7 GB and not needed to
compare the computations). Its SAM 2 object-score head is biased by ``--visible-bias`` so that
the random model sees the object (otherwise SAM 2 blanks every mask and nothing is compared).
The same state dict is converted by ``mpg_sam2_to_mmrvos``'s rules and loaded strictly into the
full-size mmrvos config. Both run the clip as their inference does -- the official
``EvfSamModel.forward`` with ``batch_size=1`` (``models/referformer.py`` at inference: SAM 2's
video predictor, frame 0 conditioned, the others propagated) and mmrvos'
``MPGSAM2.forward_clip`` -- on the same SAM 2 input (frames resized to 1024x1024 with PIL
bilinear and ImageNet-normalised, the official transform) and the same BEiT-3 input (mmrvos'
224x224 resize of it) and token ids. The official code hard-codes CUDA; on a CPU machine its
``.cuda()`` calls and ``torch.device('cuda')`` are turned into the CPU while it runs.

Printed: the largest absolute difference of the BEiT-3 tokens, the mask priors and each frame's
mask logits (official: SAM 2's 1024x1024 video-resolution logits; mmrvos: its 256x256 logits
upsampled the same way), the agreement of the binary masks, and how far mmrvos' own test
preprocessing (the config's pipeline) and BEiT-3 input are from the official transforms.

Needs ``einops`` and ``pyyaml``; ~12 GB of memory and 2-3 minutes on 2 CPU cores for 3 frames.

Example::

    git clone https://github.com/rongfu-dsb/MPG-SAM2 ../MPG-SAM2
    python projects/MPG-SAM2/tools/official_parity.py --official-repo ../MPG-SAM2 \\
        --frames ../shared/fixtures/davis-judo/JPEGImages/judo --num-frames 3
"""
import argparse
import contextlib
import importlib
import json
import os
import os.path as osp
import sys
import time
import types

PROJECT = osp.dirname(osp.dirname(osp.abspath(__file__)))
REPO_ROOT = osp.dirname(osp.dirname(PROJECT))
CONFIG = osp.join(PROJECT, 'configs', 'mpg_sam2_beit3-l_sam2-hiera-l_8xb1-6e_ref-ytvos.py')
SIZE, BEIT_SIZE = 1024, 224
MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--official-repo', required=True, help='checkout of rongfu-dsb/MPG-SAM2')
    parser.add_argument('--frames', required=True, help='a folder of video frames (.jpg/.png)')
    parser.add_argument('--num-frames', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-tokens', type=int, default=7, help='random word ids (+ <s>, </s>)')
    parser.add_argument('--visible-bias', type=float, default=10.0)
    parser.add_argument('--out', help='write the numbers as JSON here')
    args = parser.parse_args(argv)
    if not osp.isfile(osp.join(args.official_repo, 'models', 'evf_sam.py')):
        parser.error(f'--official-repo {args.official_repo}: not a checkout of '
                     'rongfu-dsb/MPG-SAM2 (no models/evf_sam.py)')
    if not osp.isdir(args.frames):
        parser.error(f'--frames {args.frames}: not a folder')
    if args.num_frames < 1 or args.num_tokens < 1:
        parser.error('--num-frames and --num-tokens must be >= 1')
    if args.out and osp.exists(args.out):
        parser.error(f'--out {args.out} exists; choose another file')
    return args


def official_transform(paths):
    """The official SAM 2 input (``inference_ytvos.py``: PIL resize to 1024x1024, ImageNet
    normalisation) and BEiT-3 input (the original frame resized to 224x224), (T, 3, S, S)."""
    import numpy as np
    import torch
    from PIL import Image
    mean, std = torch.tensor(MEAN)[:, None, None], torch.tensor(STD)[:, None, None]

    def load(path, size):
        img = Image.open(path).convert('RGB').resize((size, size), Image.BILINEAR)
        return (torch.from_numpy(np.array(img)).permute(2, 0, 1).float() - mean) / std

    return (torch.stack([load(p, SIZE)
                         for p in paths]), torch.stack([load(p, BEIT_SIZE) for p in paths]))


@contextlib.contextmanager
def cuda_on_cpu(predictor_module):
    """The official video predictor's hard-coded ``.cuda()`` / ``torch.device('cuda')`` on the
    CPU, for the duration of the block."""
    import torch

    class TorchOnCPU(types.ModuleType):

        def __getattr__(self, name):
            return getattr(torch, name)

    shim = TorchOnCPU('torch')
    shim.device = lambda *a, **k: torch.device('cpu')
    cuda, module_torch = torch.Tensor.cuda, predictor_module.torch
    torch.Tensor.cuda = lambda self, *a, **k: self
    predictor_module.torch = shim
    try:
        yield
    finally:
        torch.Tensor.cuda, predictor_module.torch = cuda, module_torch


def run_official(args, images, beit_images, ids):
    import torch
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    import official_manifest as om
    repo = osp.abspath(args.official_repo)
    seen = {}
    with om.official_import_env(repo):
        torch.manual_seed(args.seed)
        model = om.build_official_model(repo, 'large', device='cpu').eval()
        head = model.visual_model.sam_mask_decoder.pred_obj_score_head
        with torch.no_grad():
            [m for m in head.modules() if isinstance(m, torch.nn.Linear)][-1].bias += \
                args.visible_bias
        model.mm_extractor.beit3.register_forward_hook(
            lambda m, i, o: seen.__setitem__('tokens', o['encoder_out']))
        model.mask_product.register_forward_hook(
            lambda m, i, o: seen.__setitem__('prior',
                                             o.sigmoid().permute(0, 3, 1, 2)))
        predictor = importlib.import_module('models.sam2.sam2_video_predictor')
        t = len(images)
        start = time.time()
        with torch.no_grad(), cuda_on_cpu(predictor):
            masks, _ = model(images, beit_images, 1, ids.expand(t, -1),
                             ids.expand(t, -1).ne(3), torch.arange(t + 1), [(SIZE, SIZE)] * t, True)
        seen.update(masks=masks[:, 0], seconds=time.time() - start)
        state = model.state_dict()
    return state, seen


def run_mmrvos(state, images, ids):
    import torch
    import torch.nn.functional as F
    from mmdet.registry import MODELS

    from mmrvos.apis.config import init_scope, load_config
    ckpt = importlib.import_module('projects.MPG-SAM2.mpg_sam2.checkpoint')
    cfg = load_config(CONFIG)
    init_scope(cfg)
    converted, _ = ckpt.convert_any(state)
    model = MODELS.build(cfg.model).eval()
    model.load_state_dict(converted, strict=True)
    model.cfg = cfg
    del converted
    seen = {}
    # the same token ids (the release's XLM-R tokenizer is not needed to compare the models)
    model.tokenize = lambda text, device: dict(input_ids=ids, padding=ids == 3)
    model.multimodal_encoder.register_forward_hook(lambda m, i, o: seen.__setitem__('tokens', o))
    model.multimodal_encoder.register_forward_hook(
        lambda m, i, o: seen.__setitem__('beit_input', i[0]))
    model.mask_prior_generator.register_forward_hook(
        lambda m, i, o: seen.__setitem__('prior', o['mask_prior'][0]))
    start = time.time()
    with torch.no_grad():
        out = model.forward_clip(images, 'ids given')
    seen['seconds'] = time.time() - start
    seen['masks'] = F.interpolate(
        out['masks'][:, None].float(), size=(SIZE, SIZE), mode='bilinear', align_corners=False)[:,
                                                                                                0]
    seen['object_scores'] = out['object_scores']
    seen['model'] = model
    return seen


def mmrvos_preprocessing(model, paths):
    """mmrvos' own test input of the frames (config pipeline + data preprocessor)."""
    from mmrvos.apis.inference import build_video_pipeline
    from mmrvos.apis.video_pipeline import LazyVideoTensor
    from mmrvos.apis.video_reader import open_video
    pipeline = build_video_pipeline(model.cfg)
    video = LazyVideoTensor(open_video(list(paths)), pipeline, model.data_preprocessor, 'cpu')
    return video[0:len(video)]


def main(argv=None):
    args = parse_args(argv)
    import torch
    sys.path.insert(0, REPO_ROOT)
    names = sorted(
        n for n in os.listdir(args.frames)
        if n.lower().endswith(('.jpg', '.jpeg', '.png')))[:args.num_frames]
    if not names:
        raise SystemExit(f'error: --frames {args.frames}: no .jpg/.png frames')
    paths = [osp.join(args.frames, n) for n in names]
    images, official_beit = official_transform(paths)
    gen = torch.Generator().manual_seed(args.seed)
    ids = torch.cat([
        torch.tensor([0]),
        torch.randint(4, 64010, (args.num_tokens, ), generator=gen),
        torch.tensor([2])
    ])[None]
    beit_images = torch.nn.functional.interpolate(
        images, size=(BEIT_SIZE, BEIT_SIZE), mode='bilinear', align_corners=False, antialias=True)

    state, official = run_official(args, images, beit_images, ids)
    ours = run_mmrvos(state, images, ids)
    del state
    own_input = mmrvos_preprocessing(ours.pop('model'), paths)

    def maxdiff(a, b):
        return float((a.float() - b.float()).abs().max())

    report = dict(
        frames=names,
        seconds=dict(official=official['seconds'], mmrvos=ours['seconds']),
        beit3_tokens=maxdiff(official['tokens'], ours['tokens']),
        beit3_tokens_scale=float(official['tokens'].abs().mean()),
        mask_prior=maxdiff(official['prior'], ours['prior']),
        object_scores=ours['object_scores'].tolist(),
        mmrvos_beit_input_is_the_tools=maxdiff(ours['beit_input'], beit_images),
        preprocessing=dict(
            sam2_input_vs_official=maxdiff(own_input, images),
            beit3_input_vs_official=maxdiff(beit_images, official_beit)),
        per_frame=[])
    for t in range(len(names)):
        a, b = ours['masks'][t], official['masks'][t]
        inter = ((a > 0) & (b > 0)).sum().item()
        union = ((a > 0) | (b > 0)).sum().item()
        report['per_frame'].append(
            dict(
                frame=names[t],
                max_abs_diff=maxdiff(a, b),
                mean_abs_logit=float(b.abs().mean()),
                foreground=float((b > 0).float().mean()),
                mask_iou=inter / union if union else 1.0))

    print(f'official MPG-SAM 2 ({official["seconds"]:.1f} s) vs mmrvos ({ours["seconds"]:.1f} s)'
          f', {len(names)} frames, random weights (seed {args.seed}); times from one process, '
          'mmrvos second: not a speed benchmark')
    print(f'BEiT-3 tokens        max |d| {report["beit3_tokens"]:.3g} '
          f'(mean |x| {report["beit3_tokens_scale"]:.3g})')
    print(f'mask priors          max |d| {report["mask_prior"]:.3g}')
    for f in report['per_frame']:
        print(f'frame {f["frame"]:>12}  mask logits max |d| {f["max_abs_diff"]:.3g} '
              f'(mean |logit| {f["mean_abs_logit"]:.3g}, foreground {f["foreground"]:.3f}), '
              f'mask IoU {f["mask_iou"]:.6f}')
    pre = report['preprocessing']
    print(f'preprocessing: mmrvos pipeline vs official SAM 2 input max |d| '
          f'{pre["sam2_input_vs_official"]:.3g}; BEiT-3 input (mmrvos: from the 1024 input) vs '
          f'official (from the frame) max |d| {pre["beit3_input_vs_official"]:.3g}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)


if __name__ == '__main__':
    main()

"""Run the official ReferDINO and mmrvos' ReferDINO on the same clip and compare them stage by
stage.

The official model is built from its own code (``--official-repo``, a checkout of
``iSEE-Laboratory/ReferDINO``, never modified) and an official config; its weights come from an
official-layout checkpoint, or with ``--random-weights`` from its own random initialisation with
non-zero LoRA ``B`` matrices (and the fused text scaled by ``--text-scale`` so that the class
scores of the random model do not all saturate at 1.0). The same weights are converted to mmrvos
(:func:`mmrvos.checkpoint_conversion.official_to_mmrvos`, LoRA kept) and loaded strictly into
the mmrvos config. Both models then run inference as their evaluation does -- the official
``infer`` (as ``eval/inference_ytvos.py`` calls it) and mmrvos' ``ReferDINO.predict_video``
-- on the same preprocessed frames (the official transform: short side 360 with PIL bilinear,
ImageNet normalisation, no padding). Forward hooks on both models record every stage; the tool
prints the largest absolute difference of each (backbone levels, text features, input projections,
encoder memory and fused text, encoder class logits and top-k proposals, each decoder layer's
hidden states / reference boxes / class logits and pruning survivors, tracker assignment,
temporal decoder, final class logits and boxes, pixel decoder, mask logits, the selected
sequence and the IoU of the final masks per frame). It also reports how far mmrvos' own test
preprocessing (its config's test pipeline and data preprocessor) is from the official one.

Queries are matched by identity, not position: a query is the encoder token it was selected
from (its index in the flattened memory of its frame), a track is its frame-0 query. With
``--force-topk-order`` the official encoder's top-k token indices replace mmrvos' own (a
monkeypatch inside this tool) so that near-ties of the two float computations cannot reorder
the 900 proposals.

The official code needs ``einops`` and ``loralib`` (``pip install einops loralib``); see
``tools/model_converters/official_manifest.py`` for how it is imported. Nothing is downloaded:
without ``--bert`` a ``bert-base-uncased``-sized BERT with random weights and a vocabulary of
the caption's words is written to a temporary folder (with a real checkpoint, pass the real
``bert-base-uncased`` folder so that the tokenizer matches the weights).

Example::

    python tools/analysis_tools/official_parity.py configs/ytvos_swint.yaml \\
        --official-repo ../ReferDINO --random-weights \\
        --frames ../shared/fixtures/davis-judo/JPEGImages/judo --num-frames 3 \\
        --caption "a man in a white judo uniform" --drop-rate 0.5
"""
import argparse
import contextlib
import copy
import glob
import importlib.util
import json
import os
import os.path as osp
import re
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
MMRVOS_CONFIGS = {
    'swin_T_224_1k': 'configs/referdino/referdino_swin-t_8xb1-2e_ref-ytvos.py',
    'swin_B_384_22k': 'configs/referdino/referdino_swin-b_8xb1-2e_ref-ytvos.py',
}
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp')


def fail(msg: str) -> None:
    print(f'error: {msg}', file=sys.stderr)
    raise SystemExit(1)


def _load_official_helpers():
    path = osp.join(REPO_ROOT, 'tools', 'model_converters', 'official_manifest.py')
    spec = importlib.util.spec_from_file_location('_official_manifest', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument(
        'config',
        help='official config (.yaml), absolute or relative to '
        '--official-repo, e.g. configs/ytvos_swint.yaml')
    p.add_argument('--official-repo', required=True, help='official ReferDINO checkout')
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        '--checkpoint',
        help='official-layout checkpoint ({"model_state_dict": '
        '...}, as released)')
    src.add_argument(
        '--random-weights',
        action='store_true',
        help='the official random initialisation with non-zero LoRA B')
    p.add_argument('--frames', required=True, help='folder of video frames (sorted by name)')
    p.add_argument('--num-frames', type=int, default=3, help='first N frames (default 3)')
    p.add_argument('--caption', required=True, help='referring expression')
    p.add_argument(
        '--drop-rate',
        type=float,
        default=0.5,
        help='query drop rate of both models (official query_decay = 1 - drop)')
    p.add_argument(
        '--force-topk-order',
        action='store_true',
        help="feed the official encoder's top-k proposal indices to mmrvos")
    p.add_argument(
        '--mmrvos-config',
        help='mmrvos config (default: the Ref-YouTube-VOS config '
        'of the official backbone)')
    p.add_argument('--bert', help='local BERT folder (weights + tokenizer) for both models')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument(
        '--lora-b-std',
        type=float,
        default=0.05,
        help='std of the random LoRA B matrices (--random-weights)')
    p.add_argument(
        '--text-scale',
        type=float,
        default=0.05,
        help='--random-weights: scale of the last text layer\'s output LayerNorm, '
        'so that the contrastive class logits of the random model are O(10) rather '
        'than O(100) (else every sigmoid score is 1.0, all sequences tie and the '
        'selection is decided by query order); 1 keeps the initialisation')
    p.add_argument('--json', help='also write the numbers to this JSON file')
    return p.parse_args(argv)


# ------------------------------------------------------------------ inputs
def frame_paths(folder: str, num: int) -> List[str]:
    if not osp.isdir(folder):
        fail(f'--frames {folder} is not a folder')
    paths = sorted(p for p in glob.glob(osp.join(folder, '*')) if p.lower().endswith(IMAGE_EXTS))
    if len(paths) < num:
        fail(f'{folder} has {len(paths)} frames, --num-frames asks for {num}')
    return paths[:num]


def official_preprocess(paths: List[str]):
    """The official evaluation's transform: ``T.Resize(360)`` on the PIL image (short side
    360, long side truncated, PIL bilinear), ``ToTensor``, ``Normalize``; no padding.

    Returns:
        tuple: (T, 3, H, W) float tensor and the original (H, W).
    """
    import torch
    from PIL import Image

    from mmrvos.datasets.transforms import short_side_size
    frames, sizes = [], set()
    for path in paths:
        try:
            img = Image.open(path).convert('RGB')
        except OSError as e:
            fail(f'cannot read frame {path}: {e}')
        sizes.add(img.size)
        img = img.resize(short_side_size(*img.size, 360), Image.BILINEAR)
        x = torch.from_numpy(np.array(img)).permute(2, 0, 1).float().div(255)
        frames.append((x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None])
    if len(sizes) != 1:
        fail(f'frames of {osp.dirname(paths[0])} have different sizes {sorted(sizes)}')
    w, h = sizes.pop()
    return torch.stack(frames), (h, w)


def mmrvos_preprocess(model, cfg, paths: List[str]):
    """mmrvos' test preprocessing of the config (frame transforms of its test pipeline, then
    the model's data preprocessor). Returns (T, 3, H, W) and the frame samples."""
    import torch
    from mmdet.registry import TRANSFORMS
    from mmdet.structures import DetDataSample, TrackDataSample
    steps = None
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'TransformBroadcaster':
            steps = [
                TRANSFORMS.build(copy.deepcopy(t)) for t in step['transforms']
                if t['type'] != 'LoadRVOSAnnotations'
            ]
    if steps is None:
        fail('the mmrvos config has no TransformBroadcaster step in its test pipeline')
    imgs, metas = [], []
    for i, path in enumerate(paths):
        results = dict(img_path=path, frame_index=i)
        for step in steps:
            results = step(results)
        imgs.append(torch.from_numpy(np.ascontiguousarray(results['img'].transpose(2, 0, 1))))
        metas.append(
            dict(
                img_shape=results['img_shape'],
                ori_shape=results['ori_shape'],
                scale_factor=results.get('scale_factor', (1.0, 1.0)),
                frame_index=i))
    clip = TrackDataSample()
    clip.video_data_samples = [DetDataSample(metainfo=m) for m in metas]
    data = model.data_preprocessor(dict(inputs=[torch.stack(imgs)], data_samples=[clip]), False)
    return data['inputs'][0], data['data_samples'][0].video_data_samples


def write_bert(directory: str, caption: str) -> str:
    """BERT-base-sized random model and a word-level vocabulary of the caption."""
    from transformers import BertConfig, BertModel, BertTokenizer
    os.makedirs(directory, exist_ok=True)
    BertModel(BertConfig()).save_pretrained(directory)
    words = sorted(set(re.findall(r"[a-z0-9]+|[^\sa-z0-9]", caption.lower())))
    vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '.', '?'] + \
        [w for w in words if w not in ('.', '?')]
    with open(osp.join(directory, 'vocab.txt'), 'w') as f:
        f.write('\n'.join(vocab) + '\n')
    BertTokenizer(osp.join(directory, 'vocab.txt'), do_lower_case=True).save_pretrained(directory)
    return directory


# ------------------------------------------------------------------ recording
class Recorder:
    """Forward hooks that keep the last output of named modules."""

    def __init__(self):
        self.out: Dict[str, object] = {}
        self.handles = []

    def hook(self, name: str, module, transform=None):

        def fn(_mod, _inp, output):
            self.out[name] = transform(output) if transform else output

        self.handles.append(module.register_forward_hook(fn))

    def wrap(self, name: str, owner, attr: str):
        """Record the return value of the bound method ``owner.attr``."""
        original = getattr(owner, attr)

        def wrapped(*args, **kwargs):
            result = original(*args, **kwargs)
            self.out.setdefault(name, []).append(result)
            return result

        setattr(owner, attr, wrapped)


@contextlib.contextmanager
def forced_topk(model, indices):
    """Within the block, ``model.select_proposals`` (the encoder's top-k proposal choice)
    returns ``indices`` (B, k) instead of its own ranking."""

    def select_proposals(enc_logits, k):
        if tuple(indices.shape) != (enc_logits.shape[0], k):
            raise RuntimeError(f'forced top-k indices {tuple(indices.shape)} do not fit '
                               f'{enc_logits.shape[0]} frames x {k} queries')
        return indices.to(enc_logits.device)

    model.select_proposals = select_proposals
    try:
        yield
    finally:
        del model.select_proposals


# ------------------------------------------------------------------ comparisons
def topk_inversion(o_logits, m_logits, k: int) -> float:
    """How far mmrvos' top-``k`` ranking of the encoder tokens is from the official one, in
    official logits: walking along mmrvos' ranking (all tokens, so that the top-k boundary
    counts too), the largest amount by which a token ranked later has a higher official logit
    than one of the first ``k``. Zero when the rankings agree; a reordering caused by float
    noise alone is at most about twice the largest logit difference of the two models.

    Args:
        o_logits, m_logits (Tensor): (T, N) per-token encoder class logits (max over text).
    """
    import torch
    order = m_logits.float().argsort(dim=1, descending=True)
    o_along = torch.gather(o_logits.float(), 1, order)  # (T, N) official logits, mmrvos order
    # suffix maximum: the best official logit at or after each position
    suffix = o_along.flip(1).cummax(1)[0].flip(1)
    later_best = torch.cat([suffix[:, 1:], suffix.new_full((suffix.shape[0], 1), -1e30)], 1)
    return float((later_best[:, :k] - o_along[:, :k]).clamp(min=0).max())


def max_abs(a, b) -> float:
    import torch
    a, b = torch.as_tensor(a).float(), torch.as_tensor(b).float()
    if a.shape != b.shape:
        raise ValueError(f'shape {tuple(a.shape)} vs {tuple(b.shape)}')
    finite = torch.isfinite(a) & torch.isfinite(b)
    same_inf = (a == b) & ~finite
    if not bool((finite | same_inf).all()):
        return float('inf')
    return float((a[finite] - b[finite]).abs().max()) if finite.any() else 0.0


def scale_of(a) -> float:
    import torch
    a = torch.as_tensor(a).float()
    a = a[torch.isfinite(a)]
    return float(a.abs().max()) if a.numel() else 0.0


def common_positions(keys_a, keys_b):
    """Positions (i, j) with keys_a[i] == keys_b[j] (keys unique per row)."""
    where_b = {int(k): j for j, k in enumerate(keys_b)}
    return [(i, where_b[int(k)]) for i, k in enumerate(keys_a) if int(k) in where_b]


def mask_iou(a, b) -> float:
    inter = np.logical_and(a, b).sum()
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(inter / union)


# ------------------------------------------------------------------ main
def build_models(args, helpers, repo, cfg, bert_dir, workdir):
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from mmrvos.checkpoint_conversion import (CheckpointConversionError, detect_layout,
                                              load_state_dict_file, official_to_mmrvos,
                                              peft_modules)
    backbone = cfg.GroundingDINO.backbone
    cfg.GroundingDINO.query_decay = 1.0 - args.drop_rate
    torch.manual_seed(args.seed)
    official = helpers.build_official_model(repo, cfg, bert_dir, workdir)
    official.train()  # loralib merges B@A into weight at eval(): load unmerged weights first
    if args.checkpoint:
        if not osp.isfile(args.checkpoint):
            fail(f'checkpoint not found: {args.checkpoint}')
        try:
            state = load_state_dict_file(args.checkpoint)
            layout = detect_layout(state)
        except Exception as e:  # unreadable, unsafe pickle, not a state dict
            fail(f'cannot read {args.checkpoint}: {e}')
        if layout != 'official':
            fail(f'{args.checkpoint} is not in the official key layout')
    else:  # non-zero LoRA B (each shared module once: named_parameters lists it once)
        gen = torch.Generator().manual_seed(args.seed + 1)
        params = dict(official.named_parameters())
        last_text = max(
            int(m.group(1))
            for m in map(re.compile(r'^transformer\.encoder\.text_layers\.(\d+)\.').match, params)
            if m)
        with torch.no_grad():
            for name, param in params.items():
                if name.endswith('lora_B'):
                    param.copy_(torch.randn(param.shape, generator=gen) * args.lora_b_std)
                elif name.startswith(f'transformer.encoder.text_layers.{last_text}.norm2.'):
                    param.mul_(args.text_scale)  # the fused text = this norm's output
        state = {k: v.detach().clone() for k, v in official.state_dict().items()}
    result = official.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith('bert.embeddings.position')]
    if missing or result.unexpected_keys:
        print(f'official model: {len(missing)} missing, {len(result.unexpected_keys)} '
              f'unexpected keys (loaded with strict=False, as the official scripts do)')
    official.eval()

    mm_path = args.mmrvos_config or MMRVOS_CONFIGS[backbone]
    if not osp.isfile(mm_path):
        mm_path = osp.join(REPO_ROOT, mm_path)
    if not osp.isfile(mm_path):
        fail(f'mmrvos config not found: {args.mmrvos_config}')
    mm_cfg = Config.fromfile(mm_path)
    mm_cfg.model.language_model.name = bert_dir
    mm_cfg.model.decoder.drop_rate = args.drop_rate
    ours = MODELS.build(mm_cfg.model)
    try:
        converted, report = official_to_mmrvos(
            state,
            lora='keep',
            lora_wrapped=peft_modules(ours.state_dict()),
            source=args.checkpoint or '<random official weights>')
    except (CheckpointConversionError, ValueError, KeyError) as e:
        fail(f'cannot convert the official weights: {e}')
    ours.load_state_dict(converted, strict=True)
    ours.eval()
    return official, ours, mm_cfg, report


def run(args) -> dict:
    import warnings

    import torch
    from transformers.utils import logging as hf_logging
    warnings.filterwarnings('ignore')
    hf_logging.set_verbosity_error()
    helpers = _load_official_helpers()
    repo = helpers.check_official_repo(args.official_repo)
    config = args.config if osp.isfile(args.config) else osp.join(repo, args.config)
    if not osp.isfile(config):
        fail(f'official config not found: {args.config}')
    if not args.caption.strip():
        fail('--caption is empty')
    if not 0.0 <= args.drop_rate < 1.0:
        fail(f'--drop-rate must be in [0, 1), got {args.drop_rate}')
    if args.num_frames < 1:
        fail('--num-frames must be at least 1')
    if not args.mmrvos_config and helpers.load_official_config(config).GroundingDINO.backbone \
            not in MMRVOS_CONFIGS:
        fail('no mmrvos config for this official backbone; pass --mmrvos-config')
    paths = frame_paths(args.frames, args.num_frames)
    cfg = helpers.load_official_config(config)

    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import mmrvos  # noqa: F401

    numbers = dict(
        config=osp.basename(config),
        frames=args.frames,
        num_frames=len(paths),
        caption=args.caption,
        drop_rate=args.drop_rate,
        weights=args.checkpoint or f'random (seed {args.seed})',
        force_topk_order=args.force_topk_order,
        stages={})
    stages = numbers['stages']

    def report(name, a, b, note=''):
        try:
            d = max_abs(a, b)
        except ValueError as e:
            stages[name] = dict(error=str(e))
            print(f'  {name:<44} shape mismatch: {e}')
            return
        stages[name] = dict(max_abs=d, scale=scale_of(a), note=note)
        tail = f'  {note}' if note else ''
        print(f'  {name:<44} {d:12.3e}   (|official| <= {scale_of(a):.3g}){tail}')

    with tempfile.TemporaryDirectory() as workdir:
        torch.manual_seed(args.seed)  # the random BERT
        bert_dir = osp.abspath(args.bert) if args.bert else write_bert(
            osp.join(workdir, 'bert'), args.caption)
        t0 = time.time()
        official, ours, mm_cfg, conv_report = build_models(args, helpers, repo, cfg, bert_dir,
                                                           workdir)
        print(f'models built and loaded ({time.time() - t0:.0f} s); conversion: '
              f'{conv_report.converted} keys, LoRA {conv_report.lora}')
        video, (ori_h, ori_w) = official_preprocess(paths)
        mine, frame_samples = mmrvos_preprocess(ours, mm_cfg, paths)
        print(f'clip: {len(paths)} frames {ori_w}x{ori_h} -> {video.shape[-1]}x{video.shape[-2]}'
              f' (mmrvos test preprocessing: {mine.shape[-1]}x{mine.shape[-2]})')
        print('preprocessing')
        report('mmrvos test pipeline vs official transform', video, mine)
        for s in frame_samples:  # both models get the official input
            s.set_metainfo(
                dict(
                    batch_input_shape=tuple(video.shape[-2:]),
                    pad_shape=tuple(video.shape[-2:]),
                    img_shape=tuple(video.shape[-2:])))

        # ---------------- official run
        rec_o = Recorder()
        rec_o.hook('backbone', official.backbone, lambda o: [f.tensors for f in o[0]])
        rec_o.hook('text', official.feat_map)
        for lvl, proj in enumerate(official.input_proj):
            rec_o.hook(f'proj{lvl}', proj)
        rec_o.hook('encoder', official.transformer.encoder)
        rec_o.hook('enc_cls', official.transformer.enc_out_class_embed)
        rec_o.hook('decoder', official.transformer.decoder)
        rec_o.hook('temporal', official.temporal_decoder[-1])
        rec_o.hook('pixel', official.pixel_decoder)
        rec_o.wrap('match', official, 'match_from_embds')
        misc = helpers.import_official(repo, 'models.dino_util.misc')
        # = the official nested_tensor_from_videos_list(video[None], size_divisibility=1):
        # one video, no padding, an all-False padding mask
        samples = misc.NestedTensor(
            video[None].clone(),
            torch.zeros((1, ) + video.shape[:1] + video.shape[-2:], dtype=torch.bool))
        t0 = time.time()
        with torch.no_grad():
            out_o = official.infer(samples, [args.caption], [{}])
        print(f'official infer: {time.time() - t0:.0f} s')
        o = rec_o.out

        # ---------------- mmrvos run
        rec_m = Recorder()
        rec_m.hook('backbone', ours.backbone, lambda x: list(x))
        rec_m.hook('text', ours.text_feat_map)
        rec_m.hook('neck', ours.neck, lambda x: list(x))
        rec_m.hook('encoder', ours.encoder)
        num_layers = ours.decoder.num_layers
        rec_m.hook('enc_cls', ours.bbox_head.cls_branches[num_layers])
        rec_m.hook('decoder', ours.decoder)
        rec_m.hook('tracker', ours.temporal.tracker)
        rec_m.hook('temporal', ours.temporal.temporal_decoder)
        rec_m.hook('pixel', ours.pixel_decoder)
        rec_m.hook('mask_decoder', ours.bbox_head.mask_decoder)
        rec_m.wrap('tracked', ours, '_track_whole_video')
        o_topk = o['enc_cls'].max(-1)[0].topk(ours.num_queries, dim=1)[1]
        t0 = time.time()
        with torch.no_grad():
            text_dict = ours.encode_text([args.caption])
            ctx = forced_topk(ours, o_topk) if args.force_topk_order else contextlib.nullcontext()
            with ctx:
                results = ours.predict_video(video, frame_samples, [text_dict])[0]
        print(f'mmrvos predict_video: {time.time() - t0:.0f} s')
        m = rec_m.out

        # ---------------- stages
        print('backbone / text / neck')
        for lvl in range(4):
            report(f'backbone level {lvl} (stride {4 * 2 ** lvl})', o['backbone'][lvl],
                   m['backbone'][lvl])
        report('text features (feat_map)', o['text'], m['text'])
        for lvl in range(4):
            report(f'input projection {lvl} (neck)', o[f'proj{lvl}'], m['neck'][lvl])
        print('encoder')
        report('encoder memory', o['encoder'][0], m['encoder'][0])
        report('fused text (encoder)', o['encoder'][1], m['encoder'][1])
        o_enc = o['enc_cls'].max(-1)[0]
        m_enc = m['enc_cls'].max(-1)[0]
        report('encoder proposal class logits', o_enc, m_enc)
        m_topk = m_enc.topk(ours.num_queries, dim=1)[1]
        if args.force_topk_order:
            m_topk = o_topk
        same_pos = float((o_topk == m_topk).float().mean())
        overlap = np.mean(
            [len(set(a.tolist()) & set(b.tolist())) / a.numel() for a, b in zip(o_topk, m_topk)])
        inversion = topk_inversion(o_enc, m_enc, ours.num_queries)
        enc_diff = max_abs(o_enc, m_enc)
        stages['encoder top-k'] = dict(
            same_position=same_pos,
            same_set=float(overlap),
            largest_inversion=inversion,
            near_tie=bool(inversion <= 2 * enc_diff))
        print(f'  {"encoder top-k proposals":<44} same position {same_pos:.4f}, '
              f'same set {overlap:.4f}')
        print(f'  {"largest official-score inversion":<44} {inversion:.3g} along mmrvos\' '
              f'ranking ({"a near-tie" if inversion <= 2 * enc_diff else "NOT a near-tie"}: '
              f'logits differ by <= {enc_diff:.3g})')

        print('decoder (queries matched by their encoder token)')
        o_hs, o_refs, o_sel = o['decoder']
        dec = m['decoder']
        o_ids = torch.arange(o_topk.shape[1]).expand(o_topk.shape[0], -1)
        o_mem, m_mem = [], []
        for lid in range(num_layers):
            o_ids = torch.gather(o_ids, 1, o_sel[lid].transpose(0, 1))
            o_mem.append(torch.gather(o_topk, 1, o_ids))
            m_mem.append(torch.gather(m_topk, 1, dec['query_indices'][lid]))
        o_text, m_text = o['encoder'][1], m['encoder'][1]
        # one caption per clip: no padded tokens
        o_tmask = m_tmask = torch.ones(o_text.shape[:2], dtype=torch.bool)
        for lid in range(num_layers):
            pairs = [common_positions(a, b) for a, b in zip(o_mem[lid], m_mem[lid])]
            agree = np.mean([len(p) / o_mem[lid].shape[1] for p in pairs])
            ia = [torch.tensor([i for i, _ in p], dtype=torch.long) for p in pairs]
            ib = [torch.tensor([j for _, j in p], dtype=torch.long) for p in pairs]

            def pick(x, idx):
                return torch.cat([x[t][idx[t]] for t in range(len(idx))])

            o_cls = official.class_embed[lid](o_hs[lid],
                                              dict(encoded_text=o_text,
                                                   text_token_mask=o_tmask)).max(-1)[0]
            m_cls = ours.bbox_head.class_logits(lid, dec['hidden_states'][lid], m_text, m_tmask)
            stages[f'decoder layer {lid} survivors'] = dict(
                kept=int(o_mem[lid].shape[1]), agreement=float(agree))
            print(f'  layer {lid}: {o_mem[lid].shape[1]} kept, survivor agreement {agree:.4f}')
            report(f'  layer {lid} hidden states (common)', pick(o_hs[lid], ia),
                   pick(dec['hidden_states'][lid], ib))
            report(f'  layer {lid} input reference boxes (common)', pick(o_refs[lid], ia),
                   pick(dec['references'][lid], ib))
            report(f'  layer {lid} class logits (common)', pick(o_cls, ia), pick(m_cls, ib))

        print('temporal (last layer, tracks matched by their frame-0 query)')
        t = video.shape[0]
        q = o_mem[-1].shape[1]
        o_perm = torch.stack([torch.arange(q)] +
                             [torch.as_tensor(i[0]) for i in o.get('match', [])])
        m_perm = m['tracker'][0] if 'tracker' in m else torch.arange(q).expand(t, q)
        o_track_mem = torch.gather(o_mem[-1], 1, o_perm)  # (T, Q) token of track k at frame t
        m_track_mem = torch.gather(m_mem[-1], 1, m_perm)
        track_pairs = common_positions(o_track_mem[0], m_track_mem[0])
        ta = torch.tensor([i for i, _ in track_pairs], dtype=torch.long)
        tb = torch.tensor([j for _, j in track_pairs], dtype=torch.long)
        same_assign = float((o_track_mem[:, ta] == m_track_mem[:, tb]).float().mean()) \
            if len(track_pairs) else 0.0
        stages['tracker'] = dict(
            common_tracks=len(track_pairs), tracks=q, same_assignment=same_assign)
        print(f'  {"tracks in common":<44} {len(track_pairs)} of {q}; same assignment in '
              f'{same_assign:.4f} of (frame, track)')
        o_temporal = o['temporal'].reshape(t, q, -1)  # (t, b*q, d), b = 1
        m_temporal = m['temporal'][0]
        report('temporal decoder output', o_temporal[:, ta], m_temporal[:, tb])
        hidden, m_cls_f, m_boxes, m_mboxes = m['tracked'][0]
        o_logits = out_o['pred_logits'][0, ..., 0]
        o_boxes = out_o['pred_boxes'][0]
        report('final class logits', o_logits[:, ta], m_cls_f[:, tb])
        report('final boxes', o_boxes[:, ta], m_boxes[:, tb])
        report('pixel decoder (F_seg)', o['pixel'], m['pixel'])
        o_masks = out_o['pred_masks'][0]
        m_masks = m['mask_decoder']
        report('mask logits (stride 4)', o_masks[:, ta], m_masks[:, tb])

        print('selection and final masks')
        o_score = o_logits.sigmoid().mean(0)
        m_score = m_cls_f.sigmoid().mean(0)
        o_sel_track = int(o_score.argmax())
        m_sel_track = int(m_score.argmax())
        ties = int((o_score == o_score.max()).sum())
        stages['selection ties'] = ties
        print(f'  {"tracks sharing the top mean score":<44} {ties} (official), '
              f'{int((m_score == m_score.max()).sum())} (mmrvos); argmax takes the first')
        o_key, m_key = int(o_track_mem[0, o_sel_track]), int(m_track_mem[0, m_sel_track])
        same_sel = o_key == m_key
        o_final = torch.nn.functional.interpolate(
            o_masks[:, o_sel_track][None],
            size=(ori_h, ori_w),
            mode='bilinear',
            align_corners=False)[0].sigmoid() > 0.5
        ious = [mask_iou(o_final[i].numpy(), results[i].masks[0].cpu().numpy()) for i in range(t)]
        stages['selection'] = dict(same_sequence=same_sel, official_token=o_key, mmrvos_token=m_key)
        stages['final mask IoU'] = ious
        print(f'  {"selected sequence":<44} {"same" if same_sel else "DIFFERENT"} '
              f'(official token {o_key}, mmrvos token {m_key})')
        print(f'  {"final mask IoU per frame":<44} ' + ', '.join(f'{v:.4f}' for v in ious))
        print(f'  {"final mask pixels (official / mmrvos)":<44} ' +
              ', '.join(f'{int(o_final[i].sum())}/{int(results[i].masks[0].sum())}'
                        for i in range(t)))
    return numbers


def main(argv=None):
    args = parse_args(argv)
    numbers = run(args)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(numbers, f, indent=1)
        print(f'numbers written to {args.json}')


if __name__ == '__main__':
    main()

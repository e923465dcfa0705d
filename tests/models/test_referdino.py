"""ReferDINO end to end on the tiny config: loss, gradients, chunked video inference."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData

import mmrvos  # noqa: F401
import mmrvos.models.detectors.referdino as referdino_module
from mmrvos.apis import inference_rvos
from mmrvos.models.layers.lora import lora_layers, merged_lora
from rvos_test_utils import REPO_ROOT, TINY_CONFIG


def build_tiny(**overrides):
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.model.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def make_clip(t=3, h=64, w=96, text='the red circle on the left', absent=(), unannotated=()):
    clip = TrackDataSample()
    frames = []
    for i in range(t):
        s = DetDataSample(
            metainfo=dict(
                img_shape=(h, w),
                ori_shape=(h, w),
                pad_shape=(h, w),
                batch_input_shape=(h, w),
                frame_index=i))
        mask = np.zeros((1, h, w), np.uint8)
        valid = i not in absent and i not in unannotated
        if valid:
            mask[0, 10 + 2 * i:30 + 2 * i, 20:50] = 1
        box = torch.tensor([[20., 10. + 2 * i, 50., 30. + 2 * i]]) if valid else torch.zeros(1, 4)
        s.gt_instances = InstanceData(
            bboxes=box,
            masks=BitmapMasks(mask, h, w),
            labels=torch.zeros(1, dtype=torch.long),
            valid=torch.tensor([valid]),
            annotated=torch.tensor([i not in unannotated]))
        frames.append(s)
    clip.video_data_samples = frames
    clip.set_metainfo(dict(text=text))
    return clip


def test_loss_has_all_terms_for_every_layer_and_backpropagates():
    model = build_tiny()
    model.train()
    # the tiny config's temporal decoder starts gated off (gate 0, zero trajectory output
    # layer: tested in test_temporal.py); open both so that every part gets a gradient
    dec = model.temporal.temporal_decoder
    with torch.no_grad():
        dec.gate.fill_(0.5)
        dec.motion_mlp.layers[-1].weight.normal_(std=0.02)
    clips = [make_clip(), make_clip(text='the blue square', absent=(1, ), unannotated=(2, ))]
    inputs = torch.randn(2, 3, 3, 64, 96)
    losses = model.loss(inputs, clips)
    terms = ['loss_cls', 'loss_bbox', 'loss_iou', 'loss_mask', 'loss_dice', 'loss_proj']
    for prefix in ('', 'd0.', 'd1.', 'enc_'):
        for term in terms:
            assert prefix + term in losses, prefix + term
            assert torch.isfinite(losses[prefix + term])
    total = sum(losses.values())
    total.backward()
    for name in ('text_feat_map.weight', 'pixel_decoder.stem.0.conv.weight',
                 'temporal.temporal_decoder.blocks.0.self_attn.in_proj_weight',
                 'temporal.temporal_decoder.motion_mlp.layers.0.weight',
                 'temporal.temporal_decoder.gate'):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


@pytest.mark.parametrize('mask_reference', ['predicted', 'input'])
def test_mask_loss_reaches_the_box_branch_only_through_predicted_boxes(mask_reference):
    model = build_tiny(mask_reference=mask_reference)
    model.train()
    outputs = model.forward_clips(torch.randn(1, 2, 3, 64, 96), [make_clip(t=2)], with_enc=False)
    targets = model.bbox_head.get_targets([make_clip(t=2)], (16, 24))
    last = outputs[-1]
    pos = model.bbox_head.assign(last, targets, (64, 96))
    masks = last['masks'][0, :, pos[0]]
    loss = model.bbox_head.loss_dice(masks, targets['masks'][0])
    loss.backward()
    reg = model.bbox_head.reg_branches[model.decoder.num_layers - 1]
    grads = [p.grad for p in reg.parameters()]
    if mask_reference == 'predicted':
        assert all(g is not None for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0
    else:  # the official rule: detached input references, no mask gradient to the boxes
        assert all(g is None or not g.any() for g in grads)


def test_targets_subsample_masks_at_stride_4_from_pixel_2():
    model = build_tiny()
    clip = make_clip(t=2)
    targets = model.bbox_head.get_targets([clip], (16, 24))
    full = torch.from_numpy(clip.video_data_samples[1].gt_instances.masks.masks[0]).float()
    torch.testing.assert_close(targets['masks'][0, 1], full[2::4, 2::4])
    assert targets['boxes'].shape == (1, 2, 4)
    torch.testing.assert_close(targets['boxes'][0, 0],
                               torch.tensor([35 / 96, 20 / 64, 30 / 96, 20 / 64]))


def build_with_head(**head):
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.model.bbox_head.update(head)
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def test_mask_loss_stride_1_compares_upsampled_logits_with_full_resolution_gt():
    model = build_with_head(mask_loss_stride=1)
    clips = [make_clip(t=2), make_clip(t=2, absent=(0, ))]
    targets = model.bbox_head.get_targets(clips, (16, 24))
    full = torch.from_numpy(clips[0].video_data_samples[1].gt_instances.masks.masks[0]).float()
    torch.testing.assert_close(targets['loss_masks'][0, 1], full)
    torch.testing.assert_close(targets['masks'][0, 1], full[2::4, 2::4])  # matching: stride 4
    assert build_with_head(mask_loss_stride=2).bbox_head.get_targets(
        clips, (16, 24))['loss_masks'].shape == (2, 2, 32, 48)

    q = 5  # the head's losses take any number of queries
    g = torch.Generator().manual_seed(1)
    out = dict(
        cls=torch.randn(2, 2, q, generator=g),
        boxes=torch.rand(2, 2, q, 4, generator=g),
        masks=4 * torch.randn(2, 2, q, 16, 24, generator=g))
    losses = model.bbox_head.loss_by_feat_single(out, targets, (64, 96))
    # independent reference: 4x bilinear upsampling (half-pixel centres), hand-written focal
    # (alpha 0.25, gamma 2) and naive Dice, weight 5 each, over the 3 visible frames
    pos = model.bbox_head.assign(out, targets, (64, 96))
    up = torch.nn.Upsample(scale_factor=4, mode='bilinear', align_corners=False)
    valid = targets['valid']
    logits = up(out['masks'][torch.arange(2), :, pos])[valid].flatten(1)  # (3, 64 * 96)
    gt = targets['loss_masks'][valid].flatten(1)
    p = logits.sigmoid()
    pt = p * gt + (1 - p) * (1 - gt)
    alpha = 0.25 * gt + 0.75 * (1 - gt)
    focal = -(alpha * (1 - pt)**2 * torch.log(pt.clamp_min(1e-12))).mean(1).sum() * 5 / 3
    dice = (1 - (2 * (p * gt).sum(1) + 1) / (p.sum(1) + gt.sum(1) + 1)).sum() * 5 / 3
    torch.testing.assert_close(losses['loss_mask'], focal, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(losses['loss_dice'], dice, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match='mask_loss_stride'):
        build_with_head(mask_loss_stride=3)


@torch.no_grad()
def test_chunked_inference_equals_single_pass():
    model = build_tiny().eval()
    video = torch.randn(7, 3, 64, 96)
    clip = make_clip(t=7)
    text = [model.encode_text(['the red circle']), model.encode_text(['a blue square'])]
    model.test_cfg['chunk_size'] = 100
    whole = model.predict_video(video, clip.video_data_samples, text)
    model.test_cfg['chunk_size'] = 3
    chunked = model.predict_video(video, clip.video_data_samples, text)
    # the cheaper 'selected' protocol keeps the selection (scores and boxes do not depend on
    # the mask decoder) but its masks see fewer queries in the mask decoder's self-attention
    model.test_cfg['mask_queries'] = 'selected'
    cheap = model.predict_video(video, clip.video_data_samples, text)
    for exp_a, exp_c in zip(whole, cheap):
        for a, c in zip(exp_a, exp_c):
            torch.testing.assert_close(a.scores, c.scores)
            assert a.masks.shape == c.masks.shape
    assert len(whole) == len(chunked) == 2
    for exp_a, exp_b in zip(whole, chunked):
        assert len(exp_a) == len(exp_b) == 7
        for a, b in zip(exp_a, exp_b):
            assert a.masks.shape == (1, 64, 96)
            torch.testing.assert_close(a.scores, b.scores, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(a.bboxes, b.bboxes, rtol=1e-4, atol=1e-3)


def test_select_modes():
    model = build_tiny()
    cls = torch.tensor([[0.0, 3.0, -5.0, 1.0], [0.0, 2.0, -5.0, 1.5]])
    model.test_cfg.update(select='top1')
    assert model.bbox_head.select_queries(cls).tolist() == [1]
    model.test_cfg.update(select='threshold', score_thr=0.6)
    assert model.bbox_head.select_queries(cls).tolist() == [1, 3]
    model.test_cfg.update(score_thr=0.99)
    assert model.bbox_head.select_queries(cls).tolist() == [1]  # falls back to top-1
    model.test_cfg.update(select='all')
    assert model.bbox_head.select_queries(cls).tolist() == [1, 3, 0, 2]


def test_inference_on_real_judo_fixture(judo_root):
    import json
    import os.path as osp
    model = build_tiny().eval()
    meta = json.load(open(osp.join(judo_root, 'meta_expressions.json')))['videos']['judo']
    texts = [e['exp'] for e in meta['expressions'].values()]
    # a small working resolution keeps the test fast; masks come back at 480x854
    results = inference_rvos(
        model, osp.join(judo_root, 'JPEGImages', 'judo'), texts, scale=(320, 180))
    assert len(results) == 4
    for res, text in zip(results, texts):
        assert res['text'] == text
        assert res['masks'].shape == (16, 480, 854) and res['masks'].dtype == bool
        assert res['frame_names'] == meta['frames']
        assert res['boxes'].shape == (16, 1, 4) and res['scores'].shape == (16, 1)


def test_empty_text_is_rejected():
    model = build_tiny()
    with pytest.raises(ValueError, match='non-empty'):
        model.encode_text(['   '])


def test_encoder_activation_checkpointing_gives_the_same_gradients():
    plain = build_tiny()
    ckpt = build_tiny(encoder_cp=1)
    assert type(ckpt.encoder.layers[0]).__name__ == 'ActivationCheckpoint'
    plain.train()
    ckpt.train()
    inputs = torch.randn(1, 2, 3, 64, 96)
    grads = []
    for model in (plain, ckpt):
        torch.manual_seed(0)
        loss = sum(model.loss(inputs, [make_clip(t=2)]).values())
        loss.backward()
        grads.append(model.text_feat_map.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


def test_assigner_ranks_non_finite_costs_last():
    from mmdet.registry import TASK_UTILS
    assigner = TASK_UTILS.build(
        dict(
            type='SequenceHungarianAssigner', match_costs=[dict(type='FocalLossCost', weight=1.0)]))
    scores = torch.tensor([[float('nan')], [2.0], [-1.0]])
    preds = [InstanceData(scores=scores)]
    gts = [InstanceData(labels=torch.zeros(1, dtype=torch.long))]
    with pytest.warns(UserWarning, match='non-finite'):
        q, t = assigner.assign(preds, gts, [dict(img_shape=(8, 8))], torch.ones(1, 1, dtype=bool))
    assert q.tolist() == [1] and t.tolist() == [0]  # the confident finite query wins


@pytest.mark.parametrize('reduce', ['max', 'mean'])
def test_class_logit_reduces_the_valid_tokens(reduce):
    """class logit of a query = max / mean of its contrastive logits over the valid tokens
    (padded tokens ignored), against the per-token logits computed by hand."""
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.model.bbox_head.token_reduce = reduce
    head = MODELS.build(cfg.model.bbox_head)
    torch.manual_seed(0)
    hidden, text = torch.randn(2, 5, 256), torch.randn(2, 7, 256)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False  # the second sentence has 4 tokens
    got = head.class_logits(0, hidden, text, mask)
    branch = head.cls_branches[0]
    per_token = hidden @ text.transpose(1, 2) / 16.0 + branch.bias  # log_scale 'auto': sqrt(256)
    for b, n in ((0, 7), (1, 4)):
        tokens = per_token[b, :, :n]
        want = tokens.max(-1).values if reduce == 'max' else tokens.mean(-1)
        torch.testing.assert_close(got[b], want)


def test_class_logit_rejects_an_unknown_reduction():
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.model.bbox_head.token_reduce = 'sum'
    with pytest.raises(ValueError, match="token_reduce must be 'max' or 'mean'"):
        MODELS.build(cfg.model.bbox_head)


def test_mask_sets_in_one_pass_give_the_masks_and_gradients_of_one_pass_per_set():
    per_set, one_pass = build_tiny(), build_tiny(mask_sets_in_one_pass=True)
    one_pass.load_state_dict(per_set.state_dict())
    clips = [make_clip(), make_clip(text='the blue square')]
    inputs = torch.randn(2, 3, 3, 64, 96)
    outs = []
    for model in (per_set, one_pass):
        model.train()
        torch.manual_seed(0)  # the same dropout draws (the text model's) in both runs
        outs.append(model.forward_clips(inputs, clips, with_enc=True))
        sum(o['masks'].square().mean() for o in outs[-1]).backward()
    # the tiny config prunes queries layer by layer: the sets differ in size
    sizes = [o['masks'].shape[2] for o in outs[0]]
    assert len(set(sizes)) > 1, sizes
    for a, b in zip(*outs):
        assert a['masks'].shape == b['masks'].shape
        torch.testing.assert_close(a['masks'], b['masks'], atol=1e-4, rtol=1e-4)
    grads = [dict(m.bbox_head.mask_decoder.named_parameters()) for m in (per_set, one_pass)]
    for name, p in grads[0].items():
        torch.testing.assert_close(p.grad, grads[1][name].grad, atol=1e-4, rtol=1e-3)


def test_mask_sets_share_no_self_attention_across_sets():
    """Without the block-diagonal mask the concatenated sets would attend to each other and
    change each other's masks: what forward_sets prevents."""
    model = build_tiny()
    model.eval()
    dec = model.bbox_head.mask_decoder
    torch.manual_seed(1)
    feats, text = torch.randn(2, 256, 8, 12), torch.randn(2, 5, 256)
    pad = torch.zeros(2, 5, dtype=torch.bool)
    sets = [(torch.randn(2, q, 256), torch.rand(2, q, 4) * 0.5 + 0.25) for q in (6, 3)]
    kw = dict(query_pos_head=model.decoder.ref_point_head)
    alone = [dec(q, b, feats, text, pad, **kw) for q, b in sets]
    joint = dec.forward_sets([q for q, _ in sets], [b for _, b in sets], feats, text, pad, **kw)
    for a, j in zip(alone, joint):
        torch.testing.assert_close(a, j, atol=1e-4, rtol=1e-4)
    mixed = dec(
        torch.cat([q for q, _ in sets], 1), torch.cat([b for _, b in sets], 1), feats, text, pad,
        **kw)
    assert not torch.allclose(mixed[:, :6], alone[0], atol=1e-3)


def test_mask_sets_in_one_pass_needs_a_decoder_that_can():
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'referdino',
                 'gdino-sh_tiny_1xb2_toy-rvos.py'))  # StaticMaskHead
    cfg.model.mask_sets_in_one_pass = True
    with pytest.raises(ValueError, match='forward_sets'):
        MODELS.build(cfg.model)


# ---------------------------------------------------------------- official rules
# ReferDINO follows the official code where it matters for its checkpoints: the boxes that
# place the mask decoder, LoRA merged into the weights at inference (restored exactly).
def _record_mask_decoder_boxes(model):
    """Boxes (arg 1) of every mask-decoder call, in call order."""
    calls = []
    model.bbox_head.mask_decoder.register_forward_pre_hook(
        lambda mod, args: calls.append(args[1].detach().clone()))
    return calls


def _record_temporal_outputs(model):
    """(hidden, reference) returned by every ``temporal_layer`` call."""
    seen = []
    original = model.temporal_layer

    def wrapped(*args, **kwargs):
        hidden, ref, perm = original(*args, **kwargs)
        seen.append((hidden.detach().clone(), ref.detach().clone()))
        return hidden, ref, perm

    model.temporal_layer = wrapped
    return seen


def _record_calls(model, name):
    """Replace ``model.<name>`` with a wrapper that records each call's output."""
    seen = []
    original = getattr(model, name)

    def wrapped(*args, **kwargs):
        out = original(*args, **kwargs)
        seen.append(out)
        return out

    setattr(model, name, wrapped)
    return seen


def test_training_mask_decoder_uses_each_layers_input_reference_and_encoder_anchors():
    model = build_tiny()  # mask_reference='input' by default (the official code)
    assert model.mask_reference == 'input'
    with torch.no_grad():  # box deltas start at zero; make predicted != input references
        for p in model.bbox_head.reg_branches.parameters():
            p.normal_(0.0, 0.1)
    proposals = _record_calls(model, 'gen_encoder_output_proposals')
    encoder = _record_calls(model, 'forward_encoder')
    boxes_in = _record_mask_decoder_boxes(model)
    tracked = _record_temporal_outputs(model)
    outputs = model.forward_clips(torch.randn(1, 2, 3, 64, 96), [make_clip(t=2)])
    num_layers = model.decoder.num_layers
    assert len(tracked) == num_layers and len(boxes_in) == num_layers + 1
    for lid, ((_, ref), got) in enumerate(zip(tracked, boxes_in[:num_layers])):
        torch.testing.assert_close(got, ref, rtol=0, atol=0)
        assert not torch.allclose(got, outputs[lid]['boxes'].flatten(0, 1))
    # encoder proposals: the unrefined anchors (init_box_proposal) of the top-Q proposals,
    # ranked here from the head's class rule on the fused text
    output_memory, output_proposals = proposals[0]
    logits = model.bbox_head.class_logits(num_layers, output_memory, encoder[0]['memory_text'],
                                          encoder[0]['text_token_mask'])
    order = torch.topk(logits, k=model.num_queries, dim=1).indices
    anchors = torch.gather(output_proposals, 1, order[..., None].expand(-1, -1, 4)).sigmoid()
    torch.testing.assert_close(boxes_in[-1], anchors.detach())
    assert not torch.allclose(boxes_in[-1], outputs[-1]['boxes'].flatten(0, 1))


def test_predicted_boxes_variant_feeds_the_predicted_boxes():
    model = build_tiny(mask_reference='predicted')
    boxes_in = _record_mask_decoder_boxes(model)
    outputs = model.forward_clips(torch.randn(1, 2, 3, 64, 96), [make_clip(t=2)], with_enc=False)
    for out, got in zip(outputs, boxes_in):
        torch.testing.assert_close(got, out['boxes'].flatten(0, 1).detach())
    with pytest.raises(ValueError, match='mask_reference'):
        build_tiny(mask_reference='boxes')


@torch.no_grad()
def test_inference_mask_decoder_uses_the_tracked_input_reference():
    model = build_tiny().eval()
    model.test_cfg['chunk_size'] = 2  # two chunks: masks are predicted chunk by chunk
    boxes_in = _record_mask_decoder_boxes(model)
    tracked = _record_temporal_outputs(model)
    clip = make_clip(t=3)
    model.predict_video(
        torch.randn(3, 3, 64, 96), clip.video_data_samples, [model.encode_text(['the red circle'])])
    assert len(tracked) == 1  # the whole video, last decoder layer
    ref = tracked[0][1]
    torch.testing.assert_close(torch.cat(boxes_in), ref, rtol=0, atol=0)


TINY_LORA = dict(
    targets=['encoder', 'decoder'],
    rank=4,
    alpha=1.0,
    exclude=['out_proj', 'bbox_embed', 'reg_branches'])


def _randomise_lora(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for layer in lora_layers(model):
        for name in layer.lora_B:
            w = layer.lora_B[name].weight
            w.data.copy_(torch.randn(w.shape, generator=g) * 0.5)


@torch.no_grad()
def test_lora_is_merged_for_inference_and_restored_bit_for_bit(monkeypatch):
    model = build_tiny(lora=TINY_LORA).eval()
    layers = lora_layers(model)
    assert layers
    _randomise_lora(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clip = make_clip(t=3)
    video = torch.randn(3, 3, 64, 96)
    text = [model.encode_text(['the red circle'])]

    adapter_calls = []
    hooks = [
        layer.lora_A[name].register_forward_hook(lambda *a: adapter_calls.append(1))
        for layer in layers for name in layer.lora_A
    ]
    merged = model.predict_video(video, clip.video_data_samples, text)
    assert adapter_calls == []  # merged: the adapters' matmuls are not run
    # independent reference: the same model with the adapters run unmerged
    monkeypatch.setattr(referdino_module, 'merged_lora', _no_merge)
    unmerged = model.predict_video(video, clip.video_data_samples, text)
    assert len(adapter_calls) > 0
    for h in hooks:
        h.remove()
    for a, b in zip(merged[0], unmerged[0]):
        torch.testing.assert_close(a.scores, b.scores, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(a.bboxes, b.bboxes, rtol=1e-4, atol=1e-3)
        assert (a.masks != b.masks).float().mean() < 1e-3
    after = model.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert not any(layer.merged for layer in layers)


def test_merged_lora_nests_and_equals_the_explicit_sum():
    model = build_tiny(lora=TINY_LORA)
    _randomise_lora(model, seed=1)
    layer = lora_layers(model)[0]
    base = layer.get_base_layer()
    name = next(iter(layer.lora_A))
    expected = base.weight + layer.scaling[name] * (
        layer.lora_B[name].weight @ layer.lora_A[name].weight)
    original = base.weight.detach().clone()
    with merged_lora(model) as count:
        assert count == len(lora_layers(model))
        torch.testing.assert_close(base.weight, expected)
        with merged_lora(model) as inner:
            assert inner == 0  # already merged: nothing merged twice
        torch.testing.assert_close(base.weight, expected)
    assert torch.equal(base.weight, original)


class _no_merge:

    def __init__(self, model):
        pass

    def __enter__(self):
        return 0

    def __exit__(self, *exc):
        return False


def test_an_expression_over_the_token_limit_is_cut_with_a_warning():
    import warnings

    from mmrvos.models.utils import TextTruncatedWarning
    model = build_tiny()
    long_text = ' '.join(['the red circle'] * 100)  # ~300 words
    tokens = len(model.language_model.tokenizer(long_text + '.')['input_ids'])
    assert tokens > model.language_model.max_tokens
    with pytest.warns(TextTruncatedWarning, match=f'has {tokens} tokens') as rec:
        out = model.encode_text([long_text])
    assert 'the red circle the red circle' in str(rec[0].message)
    assert out['embedded'].shape[1] == model.language_model.max_tokens
    with warnings.catch_warnings():
        warnings.simplefilter('error', TextTruncatedWarning)
        model.encode_text(['the red circle'])


@torch.no_grad()
def test_bf16_autocast_inference_is_opt_in_and_close_to_fp32():
    model = build_tiny().eval()
    clip = make_clip(t=2)
    video = torch.randn(2, 3, 64, 96)
    text = [model.encode_text(['the red circle'])]
    fp32 = model.predict_video(video, clip.video_data_samples, text)[0]
    dtypes = []
    hook = model.backbone.register_forward_hook(lambda m, i, o: dtypes.append(o[0].dtype))
    model.test_cfg['autocast'] = 'bf16'
    flags = [p.requires_grad for p in model.parameters()]
    bf16 = model.predict_video(video, clip.video_data_samples, text)[0]
    hook.remove()
    assert [p.requires_grad for p in model.parameters()] == flags  # frozen stays frozen
    assert dtypes and dtypes[0] == torch.bfloat16  # the network really ran in bfloat16
    for a, b in zip(fp32, bf16):
        assert b.masks.dtype == torch.bool and b.scores.dtype == torch.float32
        assert b.masks.shape == a.masks.shape
        torch.testing.assert_close(b.scores, a.scores, atol=0.05, rtol=0.1)
    with pytest.raises(ValueError, match='autocast'):
        build_tiny(test_cfg=dict(autocast='fp16'))


@torch.no_grad()
def test_temporal_decoder_runs_on_a_one_frame_video_at_inference_only():
    model = build_tiny().eval()
    calls = []
    model.temporal.temporal_decoder.register_forward_hook(lambda *a: calls.append(1))
    clip = make_clip(t=1)
    model.predict_video(
        torch.randn(1, 3, 64, 96), clip.video_data_samples, [model.encode_text(['the red circle'])])
    assert len(calls) == 1  # official inference: the temporal decoder also on T=1
    calls.clear()
    model.forward_clips(torch.randn(1, 1, 3, 64, 96), [make_clip(t=1)], with_enc=False)
    assert calls == []  # official training: skipped on 1-frame clips (image pre-training)


def test_unpadded_masks_are_upsampled_once_to_the_original_size():
    import torch.nn.functional as F
    from mmdet.structures import DetDataSample
    model = build_tiny()
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 16, 24, generator=g) * 4
    frame = DetDataSample(
        metainfo=dict(img_shape=(64, 96), batch_input_shape=(64, 96), ori_shape=(101, 151)))
    res = model.bbox_head._predict_by_feat_single(logits, torch.tensor([[0.5, 0.5, 0.2, 0.2]]),
                                                  torch.tensor([0.9]), frame)
    # the official evaluation: one bilinear interpolation (h/4, w/4) -> original, > 0.5
    expected = F.interpolate(
        logits[None], size=(101, 151), mode='bilinear', align_corners=False)[0].sigmoid() > 0.5
    assert torch.equal(res.masks, expected)
    twice = F.interpolate(
        F.interpolate(logits[None], size=(64, 96), mode='bilinear', align_corners=False),
        size=(101, 151),
        mode='bilinear',
        align_corners=False)[0].sigmoid() > 0.5
    assert not torch.equal(twice, expected)  # the two-step rule differs on this input


class _LazyFrames:
    """Frames served chunk by chunk; records which slices were read."""

    def __init__(self, video):
        self.video, self.reads = video, []

    def __len__(self):
        return len(self.video)

    def __getitem__(self, part):
        self.reads.append((part.start, part.stop))
        return self.video[part].clone()


@torch.no_grad()
def test_lazy_frames_and_streamed_results_equal_the_in_memory_call():
    model = build_tiny().eval()
    model.test_cfg['chunk_size'] = 3
    video = torch.randn(7, 3, 64, 96)
    clip = make_clip(t=7)
    text = [model.encode_text(['the red circle']), model.encode_text(['a blue square'])]
    whole = model.predict_video(video, clip.video_data_samples, text)
    lazy = _LazyFrames(video)
    streamed = {}
    returned = model.predict_video(
        lazy,
        clip.video_data_samples,
        text,
        on_result=lambda e, t, r: streamed.setdefault((e, t), r))
    assert returned == [[], []]  # nothing accumulated
    assert sorted(streamed) == [(e, t) for e in range(2) for t in range(7)]
    # every chunk read once per pass, never the whole video at once
    assert lazy.reads == [(0, 3), (3, 6), (6, 9)] * 2
    for e in range(2):
        for t in range(7):
            assert torch.equal(streamed[e, t].masks, whole[e][t].masks)
            torch.testing.assert_close(streamed[e, t].scores, whole[e][t].scores)
    with pytest.raises(ValueError, match='7 frames and 6 frame samples'):
        model.predict_video(video, clip.video_data_samples[:6], text)


def test_every_deformable_attention_takes_the_cpu_fast_path_unless_disabled():
    from mmcv.ops import MultiScaleDeformableAttention

    from mmrvos.models.layers import CPUFastMultiScaleDeformableAttention
    fast = build_tiny()
    plain = build_tiny(cpu_fast_msda=False)
    kinds = [type(m) for m in fast.modules() if isinstance(m, MultiScaleDeformableAttention)]
    # encoder layers, decoder layers and mask decoder layers
    assert len(kinds) == (
        fast.encoder.num_layers + fast.decoder.num_layers + len(fast.bbox_head.mask_decoder.layers))
    assert set(kinds) == {CPUFastMultiScaleDeformableAttention}
    assert {type(m)
            for m in plain.modules()
            if isinstance(m, MultiScaleDeformableAttention)} == {MultiScaleDeformableAttention}
    assert fast.state_dict().keys() == plain.state_dict().keys()
    with torch.no_grad():
        clip = make_clip(t=2)
        video = torch.randn(2, 3, 64, 96)
        a = fast.eval().predict_video(video, clip.video_data_samples,
                                      [fast.encode_text(['the red circle'])])[0]
        b = plain.eval().predict_video(video, clip.video_data_samples,
                                       [plain.encode_text(['the red circle'])])[0]
    for x, y in zip(a, b):
        torch.testing.assert_close(x.scores, y.scores, rtol=1e-5, atol=1e-6)
        assert (x.masks != y.masks).float().mean() < 1e-3


def test_a2d_post_processing_thresholds_at_the_padded_size_then_resizes_nearest():
    import torch.nn.functional as F
    from mmdet.structures import DetDataSample
    model = build_tiny(test_cfg=dict(mask_rescale='threshold_nearest', select='all'))
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 16, 24, generator=g) * 4
    frame = DetDataSample(
        metainfo=dict(img_shape=(60, 90), batch_input_shape=(64, 96), ori_shape=(119, 181)))
    res = model.bbox_head._predict_by_feat_single(logits, torch.rand(2, 4), torch.rand(2), frame)
    # the official A2D rule (models/postprocessing.py), spelled out
    up = F.interpolate(logits[None], size=(64, 96), mode='bilinear', align_corners=False)[0]
    fg = (up.sigmoid() > 0.5)[:, :60, :90]
    want = F.interpolate(fg[None].float(), size=(119, 181), mode='nearest')[0].bool()
    assert res.masks.shape == (2, 119, 181) and torch.equal(res.masks, want)
    with pytest.raises(ValueError, match='mask_rescale'):
        build_tiny(test_cfg=dict(mask_rescale='nearest'))


@torch.no_grad()
def test_single_frame_temporal_off_skips_the_temporal_decoder_on_one_frame():
    model = build_tiny(test_cfg=dict(single_frame_temporal=False)).eval()
    calls = []
    model.temporal.temporal_decoder.register_forward_hook(lambda *a: calls.append(1))
    clip = make_clip(t=1)
    model.predict_video(
        torch.randn(1, 3, 64, 96), clip.video_data_samples, [model.encode_text(['the red circle'])])
    assert calls == []

"""The projects' models (ReferFormer, MPG-SAM 2) through the inference entry points a user runs:
``inference_rvos`` / ``tools/demo.py`` (they see a video as one clip: ``predict_clip``) give
the masks of tools/test.py's data path on the same real video, and ``test_cfg.refiner`` (SAM 2)
post-processes them as it does ReferDINO's."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample, TrackDataSample
from PIL import Image

from rvos_test_utils import REPO_ROOT, TINY_SAM2

CONFIGS = {
    'MPG-SAM 2': 'projects/MPG-SAM2/configs/mpg_sam2_tiny_toy-rvos.py',
    'ReferFormer': 'projects/ReferFormer/configs/referformer_tiny_toy-rvos.py',
}
TEXT = 'the man in white'


def build(name):
    """The tiny model, randomly initialised, with masks that are not trivial: MPG-SAM 2's SAM 2
    object score biased to "visible" (a random one hides the object on every frame),
    ReferFormer's dynamic mask filters scaled up (random ones give a flat mask, all True)."""
    from mmrvos.apis import init_rvos_model
    torch.manual_seed(0)
    model = init_rvos_model(osp.join(REPO_ROOT, CONFIGS[name]), None)
    if name == 'MPG-SAM 2':
        with torch.no_grad():
            model.sam2.mask_decoder.pred_obj_score_head.proj_out.bias += 10.0
    else:
        with torch.no_grad():
            for p in model.bbox_head.mask_decoder.controller.parameters():
                p.mul_(20.0)
    return model


def masks_of_the_test_loop(model, judo_root):
    """Per-frame masks (T, 480, 854) of the judo video as tools/test.py computes them: the
    config's dataset class and test pipeline, the data preprocessor, ``model.test_step``."""
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    data = model.cfg.test_dataloader.dataset.copy()
    data.update(
        type='RefYouTubeVOSDataset',
        data_root=judo_root,
        ann_file='meta_expressions.json',
        data_prefix=dict(img='JPEGImages', ann='Annotations'))
    data.pop('meta_file', None)
    dataset = DATASETS.build(data)
    sample = dataset[0]
    sample['data_samples'].set_metainfo(dict(text=TEXT))
    with torch.no_grad():
        out = model.test_step(
            dict(inputs=[sample['inputs']], data_samples=[sample['data_samples']]))
    frames = out[0].video_data_samples
    return torch.stack([f.pred_instances.masks.any(0) for f in frames]).numpy()


@pytest.mark.filterwarnings('ignore::UserWarning')
@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_inference_equals_the_test_loop_on_a_real_video(name, judo_root):
    model = build(name)
    expected = masks_of_the_test_loop(model, judo_root)
    assert expected.any() and not expected.all(), 'trivial masks: nothing compared'
    from mmrvos.apis import inference_rvos
    res = inference_rvos(model, osp.join(judo_root, 'JPEGImages', 'judo'), [TEXT, 'the mat'])
    assert res[0]['frame_names'] == [f'{t:05d}' for t in range(16)]
    assert res[0]['masks'].shape == expected.shape == (16, 480, 854)
    assert np.array_equal(res[0]['masks'], expected)
    assert len(res[1]['masks']) == 16


def clip(t, size, text):
    frames = [
        DetDataSample(
            metainfo=dict(
                img_shape=size,
                ori_shape=size,
                pad_shape=size,
                batch_input_shape=size,
                scale_factor=(1.0, 1.0),
                frame_index=i,
                text=text)) for i in range(t)
    ]
    sample = TrackDataSample(metainfo=dict(text=text))
    sample.video_data_samples = frames
    return sample


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_test_cfg_refiner_post_processes_clip_models(name):
    """``test_cfg.refiner`` on a model that predicts whole clips: the test loop's masks are the
    refiner's own output for the model's plain masks and scores (off by default; SAM 2 is not
    part of the model's weights)."""
    model = build(name).eval()
    assert model.refiner is None
    size = (128, 128)
    video = torch.randn(1, 3, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = model.predict(video, [clip(3, size, TEXT)])[0].video_data_samples
    plain_masks = torch.stack([f.pred_instances.masks.any(0) for f in plain])
    scores = torch.stack([f.pred_instances.scores.float().max() for f in plain])
    assert plain_masks.any(), 'the random model predicts no mask: nothing to refine'
    keys = set(model.state_dict())
    model.test_cfg['refiner'] = dict(type='SAM2VideoRefiner', sam2=TINY_SAM2, obj_score_thr=0.5)
    torch.manual_seed(0)  # the tiny SAM 2 is built (randomly) on first use
    with torch.no_grad():
        refined = model.predict(video, [clip(3, size, TEXT)])[0].video_data_samples
    assert set(model.state_dict()) == keys
    masks = torch.stack([f.pred_instances.masks[0] for f in refined])
    expected, info = model.refiner.refine(video[0], plain_masks, scores)
    assert torch.equal(masks, expected)
    sure = info['confident']
    assert sure.any() and torch.equal(masks[sure], info['sam_masks'][sure])
    assert torch.equal(masks[~sure], plain_masks[~sure])
    assert not torch.equal(masks, plain_masks)
    model.test_cfg['refiner'] = 'sam2'
    with pytest.raises(ValueError, match='test_cfg.refiner must be'):
        model.predict(video, [clip(3, size, TEXT)])


def test_demo_runs_a_project_model_from_a_shell(tmp_path, judo_root):
    """tools/demo.py with a project config, as a user types it (fresh process, own cwd):
    MPG-SAM 2 refined by a local SAM 2 folder; one mask per frame at the original size."""
    from transformers import Sam2VideoConfig, Sam2VideoModel
    frames = osp.join(judo_root, 'JPEGImages', 'judo')
    sam2_dir = tmp_path / 'sam2'
    torch.manual_seed(0)
    Sam2VideoModel(Sam2VideoConfig(**TINY_SAM2)).save_pretrained(str(sam2_dir))
    out = tmp_path / 'out'
    proc = run_from_elsewhere(tmp_path, osp.join(REPO_ROOT, 'tools', 'demo.py'), frames,
                              osp.join(REPO_ROOT, CONFIGS['MPG-SAM 2']), '--text', TEXT,
                              '--out-dir', out, '--refine', sam2_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = sorted(os.listdir(frames))
    pngs = sorted(os.listdir(out / 'exp0'))
    assert pngs == [n.replace('.jpg', '.png') for n in names]
    assert np.array(Image.open(out / 'exp0' / pngs[0])).shape == (480, 854)
    summary = json.load(open(out / 'results.json'))
    assert len(summary['expressions'][0]['frames']) == len(names)


def run_from_elsewhere(tmp_path, *args):
    """``python <repo>/tools/...`` from another folder, offline, as a user's shell runs it."""
    return subprocess.run([sys.executable, *map(str, args)],
                          cwd=str(tmp_path),
                          env=dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1'),
                          capture_output=True,
                          text=True,
                          timeout=600)


def test_analysis_tools_take_project_configs(tmp_path):
    """param_table (run from another folder) counts a project model's parameters (the count
    of the built model); benchmark.py, ReferDINO's, refuses one with a one-line reason."""
    import importlib.util
    config = osp.join(REPO_ROOT, CONFIGS['MPG-SAM 2'])
    proc = run_from_elsewhere(tmp_path, osp.join(REPO_ROOT, 'tools/analysis_tools/param_table.py'),
                              config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    total = int(proc.stdout.split('total')[-1].split()[0].replace(',', ''))
    assert total == sum(p.numel() for p in build('MPG-SAM 2').parameters())
    spec = importlib.util.spec_from_file_location(
        'benchmark_tool', osp.join(REPO_ROOT, 'tools/analysis_tools/benchmark.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with pytest.raises(ValueError, match='MPGSAM2 is not one'):
        tool.referdino_config(config)
    assert tool.referdino_config(
        osp.join(REPO_ROOT, 'configs/referdino/'
                 'referdino_tiny_1xb2_toy-rvos.py')).model.type


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_streaming_is_refused_with_the_way_out(name):
    """Online streaming keeps ReferDINO's per-frame state; a whole-clip model is refused with
    what to do instead."""
    from mmrvos.apis import RVOSStream
    with pytest.raises(ValueError, match='run it without --stream'):
        RVOSStream(build(name), TEXT)


def test_chunked_mpg_sam2_reads_one_chunk_at_a_time(judo_root):
    """MPG-SAM 2 with ``test_cfg.chunk_size`` (the MeViS inference) gets the lazy reader: at
    most one chunk of preprocessed frames is read at a time, and the masks are the test
    loop's, which sees the whole clip tensor."""
    from mmrvos.apis.inference import build_video_pipeline, stream_video
    from mmrvos.apis.video_pipeline import LazyVideoTensor
    from mmrvos.apis.video_reader import open_video
    model = build('MPG-SAM 2')
    model.test_cfg['chunk_size'] = 4
    expected = masks_of_the_test_loop(model, judo_root)
    assert expected.any() and not expected.all()
    video = LazyVideoTensor(
        open_video(osp.join(judo_root, 'JPEGImages', 'judo')), build_video_pipeline(model.cfg),
        model.data_preprocessor, 'cpu')
    got = []
    assert stream_video(model, video, [TEXT], lambda res: got.append(res['masks'][0])) == 16
    assert video.reads == [(s, s + 4) for s in range(0, 16, 4)]
    assert np.array_equal(np.stack(got), expected)

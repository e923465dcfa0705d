"""tools/analysis_tools/toy_lookalike_probe.py: target vs look-alike scores of motion
expressions on the synthetic benchmark."""
import json
import math
import os.path as osp

import numpy as np
import pytest
import torch

from mmrvos.datasets.synthetic import make_toy_rvos
from rvos_test_utils import REPO_ROOT, load_script

CONFIG = osp.join(REPO_ROOT, 'configs', 'referdino', 'referdino_tiny_1xb3-ft_toy-rvos.py')


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/analysis_tools/toy_lookalike_probe.py')


def test_sequence_ious_average_over_frames_where_the_object_is(tool):
    gt = np.zeros((3, 2, 2), bool)
    gt[0, 0, 0] = gt[1, 0, :] = True  # frame 2: object absent (left the frame)
    pred = np.zeros((3, 2, 2, 2), bool)
    pred[:, 0, 0, 0] = True  # query 0: the top-left pixel on every frame
    pred[1, 1] = True  # query 1: the whole frame 1 only
    # query 0: frame 0 1/1, frame 1 1/2 -> 0.75; query 1: frame 0 0, frame 1 2/4 -> 0.25
    np.testing.assert_allclose(tool.sequence_ious(pred, gt), [0.75, 0.25])
    np.testing.assert_array_equal(tool.sequence_ious(pred, np.zeros_like(gt)), [0, 0])
    with pytest.raises(ValueError, match='differ'):
        tool.sequence_ious(pred[:2], gt)


def test_best_covering_score_and_summary(tool):
    scores = np.array([0.9, 0.4, 0.7])
    assert tool.best_covering_score(scores, np.array([0.2, 0.6, 0.8]), 0.5) == 0.7
    assert tool.best_covering_score(scores, np.array([0.2, 0.5, 0.1]), 0.5) == -math.inf
    rows = [
        dict(target=0.7, lookalike=0.3),
        dict(target=0.2, lookalike=0.6),
        dict(target=-math.inf, lookalike=0.1),
        dict(target=0.5, lookalike=-math.inf)
    ]
    s = tool.summarise(rows)
    assert s['num_expressions'] == 4
    assert s['win_rate'] == 0.5  # rows 0 and 3
    assert (s['target_uncovered'], s['lookalike_uncovered']) == (1, 1)
    assert s['mean_target_score'] == pytest.approx(0.45)  # rows with both covered
    assert s['mean_lookalike_score'] == pytest.approx(0.45)
    with pytest.raises(ValueError, match='no motion expression'):
        tool.summarise([])


def test_probe_runs_on_motion_expressions_with_a_lookalike(tool, tmp_path):
    root = str(tmp_path / 'toy')
    make_toy_rvos(root, seed=5, num_train=1, num_valid=2, num_frames=6)
    ckpt = str(tmp_path / 'random.pth')
    from mmrvos.apis import init_rvos_model
    torch.save({'state_dict': init_rvos_model(CONFIG).state_dict()}, ckpt)
    out = str(tmp_path / 'probe.json')
    summary = tool.main([CONFIG, ckpt, '--data-root', root, '--out', out])
    with open(osp.join(root, 'valid', 'meta.json')) as f:
        objects = {v: d['objects'] for v, d in json.load(f)['videos'].items()}
    with open(osp.join(root, 'meta_expressions', 'valid', 'meta_expressions.json')) as f:
        expected = sorted((vid, eid) for vid, v in json.load(f)['videos'].items()
                          for eid, e in v['expressions'].items()
                          if e['exp_type'] == 'motion' and objects[vid][e['obj_id']]['distractor'])
    assert expected, 'the generated split should hold look-alike motion expressions'
    with open(out) as f:
        written = json.load(f)
    assert sorted((r['video_id'], r['exp_id']) for r in written['rows']) == expected
    assert written['summary'] == summary
    assert summary['num_expressions'] == len(expected)
    assert 0.0 <= summary['win_rate'] <= 1.0
    with pytest.raises(FileExistsError, match='probe.json'):
        tool.main([CONFIG, ckpt, '--data-root', root, '--out', out])
    with pytest.raises(FileNotFoundError, match='meta.json'):
        tool.main([CONFIG, ckpt, '--data-root', str(tmp_path)])


def test_zero_motion_embed_zeroes_the_trajectory_output(tool):
    from mmrvos.apis import init_rvos_model
    model = init_rvos_model(CONFIG)
    mlp = model.temporal.temporal_decoder.motion_mlp
    for p in mlp.parameters():
        torch.nn.init.normal_(p)
    first = mlp.layers[0].weight.clone()
    tool.zero_motion_embed(model)
    assert not mlp(torch.randn(5, 12)).any()
    assert torch.equal(mlp.layers[0].weight, first)  # only the output layer
    without = init_rvos_model(CONFIG, cfg_options={'model.temporal_enhancer': None})
    with pytest.raises(ValueError, match='trajectory embedding'):
        tool.zero_motion_embed(without)

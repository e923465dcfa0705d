"""Bad evaluation inputs: ``tools/eval_masks.py`` ends with ``error: ...`` naming the file
and the problem, exit status 1 and no traceback -- or repairs with a warning and scores
against an independent reference. ``RVOSMetric`` (in-process, as the test loop uses it)
refuses to drop expressions silently.

The tool is run as a user runs it (a subprocess from the repository root) for one case of
each kind; as every run imports the whole package (~6 s of CPU), the other bad files go
through the same ``cli()`` in-process (same code path from argv to ``error:``).
"""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData
from rvos_bad_data import (FRAMES, H, W, frame_path, make_root, object_ids, png_path, save_frame,
                           save_png, write_meta)

from mmrvos.evaluation import RVOSMetric
from rvos_test_utils import REPO_ROOT, load_script


# --------------------------------------------------------------------------- helpers
def jaccard(gt, pred):
    """Region J of one frame (empty vs empty = 1), written out independently."""
    union = np.logical_or(gt, pred).sum()
    return 1.0 if union == 0 else np.logical_and(gt, pred).sum() / union


def write_preds(root, masks_by_exp, video='v'):
    """Predictions in the expression layout: {exp_id: {frame: bool mask}}."""
    pred = osp.join(root, 'preds')
    for exp_id, frames in masks_by_exp.items():
        for frame, m in frames.items():
            save_png(osp.join(pred, video, exp_id, frame + '.png'), m.astype(np.uint8), 'L')
    return pred


def shifted(t, obj=1):
    """A prediction 1 px to the right of object ``obj`` on frame t (J < 1, not trivial)."""
    return np.roll(object_ids(t, (obj, )) == obj, 1, axis=1)


def run_tool(*args):
    env = dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1')
    env.pop('PYTHONPATH', None)
    return subprocess.run([sys.executable, 'tools/eval_masks.py', *map(str, args)],
                          cwd=REPO_ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)


def assert_refused(proc, *patterns):
    """Exit status != 0, ``error:`` on stderr matching every pattern, no traceback."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert 'Traceback' not in proc.stderr, proc.stderr
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith('error: ')), None)
    assert line is not None, proc.stderr
    for p in patterns:
        assert re.search(p, proc.stderr, re.S), (p, proc.stderr)


def refused_in_process(capsys, argv, *patterns):
    """``cli(argv)`` returns status 2 with ``error: ...`` matching every pattern on stderr."""
    capsys.readouterr()
    assert load_script('tools/eval_masks.py').cli([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'Traceback' not in err, err
    for p in patterns:
        assert re.search(p, err, re.S), (p, err)


def good_root(tmp_path, **kwargs):
    root = make_root(str(tmp_path / 'data'), **kwargs)
    preds = write_preds(str(tmp_path), {'0': {f: shifted(t) for t, f in enumerate(FRAMES)}})
    return root, preds


# --------------------------------------------------------------------------- eval_masks
def test_tool_missing_img_dir(tmp_path):
    root, preds = good_root(tmp_path)
    missing = tmp_path / 'no_such_frames'
    assert_refused(
        run_tool(root, preds, '--img-dir', missing),
        r'--img-dir not found: ' + re.escape(str(missing)))


def test_tool_bad_json_names_line_and_column(tmp_path):
    root, preds = good_root(tmp_path)
    meta = osp.join(root, 'meta_expressions.json')
    with open(meta, 'w') as f:
        f.write('{"videos": {"v": {"frames": ["00000"],\n "expressions": }}}')
    assert_refused(
        run_tool(root, preds),
        re.escape(meta) + r' is not valid JSON.*line 2 '
        'column')


@pytest.mark.parametrize('meta,problem', [
    ({
        'vids': {}
    }, r"expected a JSON object with a 'videos' key"),
    ({
        'videos': {
            'v': {
                'frames': list(FRAMES)
            }
        }
    }, r"video 'v' lacks \"expressions\""),
    ({
        'videos': {
            'v': {
                'expressions': {}
            }
        }
    }, r"video 'v' lacks \"frames\""),
    ({
        'videos': [1, 2]
    }, r'"videos" must be an object'),
    ({
        'videos': {
            'v': {
                'frames': list(FRAMES),
                'expressions': {
                    '0': {
                        'exp': 'a',
                        'obj_id': 'dog'
                    }
                }
            }
        }
    }, r"expression '0': obj_id 'dog' is not an integer"),
])
def test_tool_bad_meta_layout(tmp_path, capsys, meta, problem):
    root, preds = good_root(tmp_path)
    path = osp.join(root, 'meta_expressions.json')
    with open(path, 'w') as f:
        json.dump(meta, f)
    if 'vids' in meta:  # one case as a subprocess
        assert_refused(run_tool(root, preds), re.escape(path) + '.*' + problem)
    else:
        refused_in_process(capsys, [root, preds], re.escape(path) + '.*' + problem)


def test_tool_duplicated_expression_id(tmp_path, capsys):
    root, preds = good_root(tmp_path)
    path = osp.join(root, 'meta_expressions.json')
    with open(path, 'w') as f:
        f.write('{"videos": {"v": {"frames": ["00000", "00001", "00002"], "expressions": {'
                '"0": {"exp": "a", "obj_id": "1"}, "0": {"exp": "b", "obj_id": "1"}}}}}')
    refused_in_process(capsys, [root, preds], re.escape(path) + r".*key '0' appears twice")


def test_tool_obj_id_in_no_mask_strict_and_no_strict(tmp_path):
    """obj_id 2 is in no PNG: today expression '1' silently left the average (#exp 1)."""
    exps = {'0': dict(exp='the box', obj_id='1'), '1': dict(exp='no box', obj_id='2')}
    root, preds = good_root(tmp_path, exps=exps)
    write_preds(str(tmp_path), {'1': {f: shifted(t) for t, f in enumerate(FRAMES)}})
    assert_refused(
        run_tool(root, preds),
        r"1 expression\(s\) have no frame to score.*video 'v' expression '1': "
        r'obj_id \[2\] is in none of the 3 annotation PNGs', '--no-strict')
    out = tmp_path / 'jf.json'
    proc = run_tool(root, preds, '--no-strict', '--out', out)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"(?s)video 'v' expression '1'.*not strict: 1 expression", proc.stderr)
    data = json.loads(out.read_text())
    assert [e['exp_id'] for e in data['expressions']] == ['0']
    ref = np.mean([jaccard(object_ids(t) == 1, shifted(t)) for t in range(3)])
    assert data['summary']['J'] == pytest.approx(ref)


def test_tool_expression_without_obj_id(tmp_path, capsys):
    exps = {'0': dict(exp='the box', obj_id='1'), '1': dict(exp='no id')}
    root, preds = good_root(tmp_path, exps=exps)
    refused_in_process(capsys, [root, preds], r"video 'v' expression '1': no \"obj_id\"")


def test_tool_binary_annotation_of_one_object_video_is_repaired(tmp_path):
    root, preds = good_root(tmp_path)
    bad = png_path(root, '00001')
    save_png(bad, (object_ids(1) > 0).astype(np.uint8) * 255, 'L')
    out = tmp_path / 'jf.json'
    with pytest.warns(
            UserWarning,
            match=re.escape(bad) + r".*binary 'L' \(values 0/255\) mask read as object 1"):
        assert load_script('tools/eval_masks.py').cli([root, preds, '--out', str(out)]) == 0
    data = json.loads(out.read_text())
    assert data['summary']['num_expressions'] == 1
    ref = [jaccard(object_ids(t) == 1, shifted(t)) for t in range(3)]
    assert [v[0] for v in data['expressions'][0]['frames'].values()] == pytest.approx(ref)


def test_tool_binary_annotation_of_two_object_video_is_an_error(tmp_path, capsys):
    root, preds = good_root(tmp_path, obj_ids=(1, 2))
    bad = png_path(root, '00000')
    save_png(bad, (object_ids(0, (1, 2)) > 0).astype(np.uint8) * 255, 'L')
    refused_in_process(capsys, [root, preds], re.escape(bad) + r".*binary 'L'.*objects \[1, 2\]")


@pytest.mark.parametrize('mode', ['RGB', 'RGBA'])
def test_tool_colour_annotation_is_an_error(tmp_path, capsys, mode):
    root, preds = good_root(tmp_path)
    bad = png_path(root, '00002')
    save_png(bad, np.stack([object_ids(2) * 100] * 3, -1), mode)
    refused_in_process(capsys, [root, preds], re.escape(bad) + f".*mode '{mode}'")


def test_tool_truncated_annotation_is_an_error(tmp_path, capsys):
    root, preds = good_root(tmp_path)
    bad = png_path(root, '00000')
    data = open(bad, 'rb').read()
    with open(bad, 'wb') as f:
        f.write(data[:len(data) // 2])
    refused_in_process(capsys, [root, preds], re.escape(bad) + '.*truncated')


def test_tool_annotation_of_wrong_size_names_both_files(tmp_path):
    root, preds = good_root(tmp_path)
    bad = png_path(root, '00001')
    save_png(bad, object_ids(1)[:, :W - 4])
    assert_refused(
        run_tool(root, preds),
        re.escape(bad) + f'.*{W - 4}x{H}.*{W}x{H}.*' + re.escape(frame_path(root, '00001')))


def test_tool_unannotated_frame_of_another_size(tmp_path, capsys):
    root, preds = good_root(tmp_path, masks={'00000': object_ids(0), '00002': object_ids(2)})
    odd = frame_path(root, '00001')
    save_frame(odd, size=(W, H + 6))
    refused_in_process(capsys, [root, preds], re.escape(odd) + f'.*{W}x{H + 6}.*{W}x{H}')


def test_tool_listed_frame_without_image(tmp_path, capsys):
    root, preds = good_root(tmp_path)
    os.remove(frame_path(root, '00002'))
    refused_in_process(capsys, [root, preds],
                       'frame not found: ' + re.escape(osp.join(root, 'JPEGImages', 'v', '00002')))


def test_tool_judo_853px_annotation_is_a_warned_repair(tmp_path, judo_root):
    out = tmp_path / 'jf.json'
    with pytest.warns(UserWarning, match=r'judo/00005\.png: annotation size 853x480.*854x480'):
        assert load_script('tools/eval_masks.py').cli([
            judo_root,
            osp.join(judo_root, 'predictions', 'rvos'), '--layout', 'object', '--out',
            str(out)
        ]) == 0
    # the padded column is background: J equals the one computed on the padded reference
    from PIL import Image
    gt = np.zeros((480, 854), bool)
    gt[:, :853] = np.asarray(Image.open(osp.join(judo_root, 'Annotations/judo/00005.png'))) == 2
    pred = np.asarray(Image.open(osp.join(judo_root, 'predictions/rvos/judo/00005.png'))) == 2
    exp = {e['exp_id']: e for e in json.loads(out.read_text())['expressions']}
    assert exp['1']['frames']['00005'][0] == pytest.approx(jaccard(gt, pred))


# --------------------------------------------------------------------------- RVOSMetric
def _track(video, exp, masks, frames=FRAMES, paths=None):
    samples = []
    for t, f in enumerate(frames):
        m = masks[t]
        s = DetDataSample(
            metainfo=dict(
                video_id=video,
                exp_id=exp,
                frame_id=f,
                ori_shape=m.shape,
                ori_video_length=len(frames),
                img_path=None if paths is None else paths[t]))
        inst = InstanceData()
        inst.masks = torch.as_tensor(m[None])
        inst.scores = torch.ones(1)
        s.pred_instances = inst
        samples.append(s)
    track = TrackDataSample()
    track.video_data_samples = samples
    return track


def _evaluate(metric, tracks):
    ev = Evaluator(metric)
    ev.process(data_samples=tracks, data_batch=None)
    return ev.evaluate(len(tracks))


def test_metric_obj_id_in_no_mask_strict_and_not(tmp_path):
    exps = {'0': dict(exp='the box', obj_id='1'), '1': dict(exp='no box', obj_id='2')}
    root = make_root(str(tmp_path), exps=exps)
    preds = [shifted(t) for t in range(3)]
    tracks = [_track('v', '0', preds), _track('v', '1', preds)]
    with pytest.raises(
            ValueError,
            match=r"(?s)meta_expressions\.json: 1 expression.*"
            r"video 'v' expression '1': obj_id \[2\] is in none.*--no-strict"):
        _evaluate(RVOSMetric(data_root=root), tracks)
    with pytest.warns(UserWarning, match=r"(?s)expression '1'.*not strict: 1 expression"):
        res = _evaluate(RVOSMetric(data_root=root, strict=False), tracks)
    ref = np.mean([jaccard(object_ids(t) == 1, preds[t]) for t in range(3)])
    assert res['rvos/J'] == pytest.approx(ref)


def test_metric_frames_of_different_sizes_is_an_error(tmp_path):
    root = make_root(str(tmp_path))
    preds = [shifted(0), np.zeros((H, W + 2), bool), shifted(2)]
    paths = [frame_path(root, f) for f in FRAMES]
    with pytest.raises(ValueError, match=re.escape(paths[1]) + f'.*{W + 2}x{H}.*{W}x{H}'):
        _evaluate(RVOSMetric(data_root=root), [_track('v', '0', preds, paths=paths)])


def test_metric_binary_annotation_two_objects_is_an_error(tmp_path):
    root = make_root(str(tmp_path), obj_ids=(1, 2))
    bad = png_path(root, '00002')
    save_png(bad, (object_ids(2, (1, 2)) > 0).astype(np.uint8) * 255, 'L')
    preds = [shifted(t) for t in range(3)]
    with pytest.raises(ValueError, match=re.escape(bad) + r'.*objects \[1, 2\]'):
        _evaluate(RVOSMetric(data_root=root), [_track('v', '0', preds)])


def test_test_py_no_strict_sets_dataset_and_metric(tmp_path):
    """tools/test.py --no-strict: strict=False on the test dataset and every test metric."""
    from mmengine.config import Config
    test_py = load_script('tools/test.py')
    cfg = Config(
        dict(
            test_dataloader=dict(dataset=dict(type='RefYouTubeVOSDataset')),
            test_evaluator=[dict(type='RVOSMetric'),
                            dict(type='A2DMetric')]))
    args = test_py.parse_args(['cfg.py', 'ckpt.pth', '--no-strict'])
    assert args.strict is False
    test_py.set_strict(cfg, args.strict)
    assert cfg.test_dataloader.dataset.strict is False
    assert [m.strict for m in cfg.test_evaluator] == [False, False]
    assert test_py.parse_args(['cfg.py', 'ckpt.pth']).strict is True


def test_mevis_ground_truth_bad_anno_id(tmp_path):
    """MeViS layout: an anno_id missing from mask_dict.json, or a mask list of the wrong
    length, is refused when the ground truth is opened (not as an IndexError mid-scoring)."""
    from mmrvos.evaluation.functional import RVOSGroundTruth
    root = str(tmp_path)
    write_meta(
        root, {
            'v':
            dict(
                frames=['00000', '00001'],
                expressions={'0': dict(exp='a cat', obj_id=[0], anno_id=[7])})
        })
    mask_dict = osp.join(root, 'mask_dict.json')
    with open(mask_dict, 'w') as f:
        json.dump({'8': [None, None]}, f)
    with pytest.raises(KeyError, match=r"expression '0': anno_id 7 not in " + re.escape(mask_dict)):
        RVOSGroundTruth(root, mask_dict_file='mask_dict.json')
    with open(mask_dict, 'w') as f:
        json.dump({'7': [None]}, f)
    with pytest.raises(
            ValueError,
            match=re.escape(mask_dict) + r": anno_id 7 has 1 masks for "
            "the 2 frames of video 'v'"):
        RVOSGroundTruth(root, mask_dict_file='mask_dict.json')

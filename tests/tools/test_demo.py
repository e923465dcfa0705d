"""tools/demo.py on the real judo fixture, and the overlay video writer."""
import importlib.util
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mmrvos.visualization import OverlayVideoWriter, RVOSLocalVisualizer
from rvos_test_utils import REPO_ROOT, TINY_CONFIG


def _demo():
    spec = importlib.util.spec_from_file_location('mmrvos_demo_cli',
                                                  osp.join(REPO_ROOT, 'tools', 'demo.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_demo_writes_masks_overlay_and_json(judo_root, tmp_path):
    out = str(tmp_path / 'demo')
    frames = osp.join(judo_root, 'JPEGImages', 'judo')
    args = [
        frames, '--text', 'the man standing against the back wall', '--text',
        'the person kneeling on the red mat', '--config', TINY_CONFIG, '--out-dir', out, '--scale',
        '320', '180'
    ]
    summary = _demo().main(args)
    assert len(summary['expressions']) == 2
    for i in range(2):
        pngs = sorted(os.listdir(osp.join(out, f'exp{i}')))
        assert len(pngs) == 16 and pngs[0] == '00000.png'
        mask = np.array(Image.open(osp.join(out, f'exp{i}', pngs[0])))
        assert mask.shape == (480, 854) and set(np.unique(mask)) <= {0, 255}
    gif = Image.open(osp.join(out, 'overlay.gif'))
    assert gif.n_frames == 16
    saved = json.load(open(osp.join(out, 'results.json')))
    assert len(saved['expressions'][1]['frames']) == 16
    assert all(len(f['box']) == 4 for f in saved['expressions'][0]['frames'])
    # never overwrite a user's outputs by surprise
    with pytest.raises(FileExistsError, match='exists'):
        _demo().main(args)


def test_demo_rejects_bad_input(tmp_path, capsys):
    demo = _demo()
    with pytest.raises(SystemExit):  # argparse: usage error
        demo.main([
            str(tmp_path), '--text', '  ', '--config', TINY_CONFIG, '--out-dir',
            str(tmp_path / 'o')
        ])
    assert 'empty expression' in capsys.readouterr().err
    bad = tmp_path / 'broken.mp4'
    bad.write_bytes(b'not a video')
    with pytest.raises(ValueError, match='broken.mp4'):
        demo.main([
            str(bad), '--text', 'a cat', '--config', TINY_CONFIG, '--out-dir',
            str(tmp_path / 'o2')
        ])
    with pytest.raises(FileNotFoundError, match='missing'):
        demo.main([
            str(tmp_path / 'missing'), '--text', 'a cat', '--config', TINY_CONFIG, '--out-dir',
            str(tmp_path / 'o3')
        ])


def test_overlay_video_of_drawn_frames(tmp_path):
    frame = np.full((20, 30, 3), 100, np.uint8)
    mask = np.zeros((20, 30), bool)
    mask[5:15, 10:20] = True
    vis = RVOSLocalVisualizer(name='test_overlay_video_of_drawn_frames')
    out = vis.draw_frame(frame, [mask], colors=[(255, 0, 0)])
    assert (out[0, 0] == 100).all()  # outside: untouched
    assert tuple(out[10, 15]) == (178, 50, 50)  # inside: RGB blend with red at 0.5
    with pytest.raises(ValueError, match='10x20'):
        vis.draw_frame(frame, [mask[:, :10]])
    writer = OverlayVideoWriter(str(tmp_path / 'a.gif'), num_frames=2)
    writer.add(out)
    writer.add(frame)
    assert Image.open(writer.close()).n_frames == 2
    with pytest.raises(ValueError, match='unsupported'):
        OverlayVideoWriter(str(tmp_path / 'a.avi'), num_frames=1)

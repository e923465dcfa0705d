"""tools/eval_masks.py end to end on the real fixture."""
import importlib.util
import json
from os import path as osp

import pytest
from eval_fixture_reference import FIXTURE, OFFICIAL, REPO_ROOT

pytestmark = pytest.mark.skipif(
    not osp.isdir(FIXTURE), reason=f'davis-judo fixture not found at {FIXTURE}')


def _tool():
    spec = importlib.util.spec_from_file_location('eval_masks',
                                                  osp.join(REPO_ROOT, 'tools', 'eval_masks.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_eval_masks_prints_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / 'rvos_jf.json'
    argv = [
        FIXTURE,
        osp.join(FIXTURE, 'predictions', 'rvos'), '--layout', 'object', '--annotators', '--out',
        str(out)
    ]
    with pytest.warns(UserWarning, match='00005.png'):
        summary = _tool().main(argv)
    printed = capsys.readouterr().out
    assert 'annotator 3' in printed and f'{100 * summary["J&F"]:.3f}' in printed
    data = json.loads(out.read_text())
    exps = {e['exp_id']: e for e in data['expressions']}
    j, f = OFFICIAL['rvos/00008/obj3/pred3']
    assert exps['2']['frames'] == {
        '00008': [pytest.approx(j, abs=1e-6),
                  pytest.approx(f, abs=1e-6)]
    }
    # existing output is not overwritten without --overwrite
    with pytest.raises(SystemExit, match='--overwrite'):
        _tool().main(argv)
    _tool().main(argv + ['--overwrite'])

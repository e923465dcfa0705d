"""compare_systems.py: the README block is generated from results and replaced in place."""
import importlib.util
import os.path as osp

import pytest

from rvos_test_utils import REPO_ROOT

SCRIPT = osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'compare_systems.py')


@pytest.fixture(scope='module')
def cs():
    spec = importlib.util.spec_from_file_location('compare_systems', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_system_config_exists(cs):
    for cfg in cs.SYSTEMS.values():
        assert osp.isfile(osp.join(REPO_ROOT, cfg)), cfg


def test_block_reports_results_and_is_replaced_in_place(cs, tmp_path):
    args = cs.parse_args(['--iters', '7', '--num-eval', '5'])
    runs = [
        dict(
            system='ReferDINO',
            config='a.py',
            train_s=3.0,
            metrics={
                'rvos/J&F': .4125,
                'rvos/J': .4,
                'rvos/F': .425,
                'rvos/J&F_motion': .3,
                'rvos/J&F_spatial': .5
            })
    ]
    memory = [
        dict(
            head='deformable',
            type='GroundingMaskDecoder',
            queries=900,
            frames=1,
            input_hw=[360, 640],
            mask_hw=[90, 160],
            peak_extra_mib=500.0,
            seconds=1.0),
        dict(
            head='dynamic',
            type='RVOSDynamicMaskHead',
            queries=900,
            frames=1,
            input_hw=[360, 640],
            mask_hw=[90, 160],
            peak_extra_mib=2000.0,
            seconds=1.0)
    ]
    block = cs.format_block(runs, memory, args)
    assert block.startswith(cs.START) and block.endswith(cs.END)
    assert '--iters 7 --num-eval 5' in block
    assert '| ReferDINO | `a.py` | 41.2 | 40.0 | 42.5 | 30.0 | 50.0 | 3 |' in block
    assert 'Dynamic minus deformable: 1500 MiB (4.0x)' in block
    readme = tmp_path / 'README.md'
    readme.write_text('# Title\n\nintro\n')
    cs.write_readme(str(readme), block)
    first = readme.read_text()
    assert first.startswith('# Title\n\nintro\n') and '## Comparison systems' in first
    readme.write_text(first + '\n## After\n')
    cs.write_readme(str(readme), cs.format_block([], memory[:1], args))
    text = readme.read_text()
    assert text.count(cs.START) == 1 and '| ReferDINO |' not in text
    assert text.endswith('## After\n') and text.startswith('# Title')


def test_budget_must_be_positive(cs):
    with pytest.raises(SystemExit):
        cs.parse_args(['--iters', '0'])

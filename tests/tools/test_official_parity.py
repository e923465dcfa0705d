"""tools/analysis_tools/official_parity.py: its matching helpers and its refusals of bad input
(the comparison itself needs the official code, which the repository does not ship; its
measured numbers are in docs/en/official_parity.md)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from rvos_test_utils import JUDO, REPO_ROOT, load_script

TOOL = 'tools/analysis_tools/official_parity.py'
ENV = dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1')


@pytest.fixture(scope='module')
def tool():
    return load_script(TOOL)


def test_forced_topk_replaces_only_the_proposal_selection(tool):
    from mmrvos.models.detectors.referdino import ReferDINO

    class Holder:  # any object with ReferDINO's select_proposals
        select_proposals = ReferDINO.select_proposals

    model = Holder()
    logits = torch.randn(2, 50)
    forced = torch.stack([torch.arange(10), torch.arange(10, 20)])
    with tool.forced_topk(model, forced):
        assert torch.equal(model.select_proposals(logits, 10), forced)
        # the decoder's own rankings are not touched
        assert torch.equal(
            torch.topk(logits, k=10, dim=1)[1],
            logits.argsort(1, descending=True)[:, :10])
        with pytest.raises(RuntimeError, match='do not fit'):
            model.select_proposals(logits, 5)
    # restored after the block
    assert torch.equal(
        model.select_proposals(logits, 10),
        logits.argsort(1, descending=True)[:, :10])


def test_queries_are_matched_by_identity_not_position(tool):
    assert tool.common_positions(torch.tensor([7, 3, 9]), torch.tensor([3, 9, 4])) == \
        [(1, 0), (2, 1)]
    assert tool.common_positions(torch.tensor([1]), torch.tensor([2])) == []


def test_topk_inversion_measures_reordering_in_official_logits(tool):
    o = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])
    # same ranking (other values): no inversion
    assert tool.topk_inversion(o, o * 2 + 1, 3) == 0.0
    # tokens 1 and 2 swapped inside the top 3: the official gap between them
    swapped = torch.tensor([[5.0, 2.9, 3.0, 2.0, 1.0]])
    assert tool.topk_inversion(o, swapped, 3) == pytest.approx(1.0)
    # token 3 pushed into the top 2 over token 1: a boundary inversion of 4 - 2
    boundary = torch.tensor([[5.0, 1.0, 0.0, 4.5, 0.5]])
    assert tool.topk_inversion(o, boundary, 2) == pytest.approx(2.0)
    # a swap below the top-k does not count
    below = torch.tensor([[5.0, 4.0, 3.0, 0.5, 1.0]])
    assert tool.topk_inversion(o, below, 3) == 0.0


def test_max_abs_treats_matching_infinities_as_equal(tool):
    inf = float('-inf')
    # contrastive logits are -inf on padded token slots in both models
    assert tool.max_abs(torch.tensor([1.0, inf]), torch.tensor([1.5, inf])) == 0.5
    assert tool.max_abs(torch.tensor([1.0, inf]), torch.tensor([1.0, 2.0])) == float('inf')
    with pytest.raises(ValueError, match='shape'):
        tool.max_abs(torch.zeros(2), torch.zeros(3))
    assert tool.mask_iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 1.0
    assert tool.mask_iou(np.eye(2, dtype=bool), np.ones((2, 2), bool)) == 0.5


def _run(*args):
    return subprocess.run([sys.executable, TOOL, *args],
                          cwd=REPO_ROOT,
                          env=ENV,
                          capture_output=True,
                          text=True,
                          timeout=300)


def test_refuses_a_folder_that_is_not_the_official_code(tmp_path):
    proc = _run('configs/ytvos_swint.yaml', '--official-repo', str(tmp_path), '--random-weights',
                '--frames', os.path.join(JUDO, 'JPEGImages', 'judo'), '--caption', 'a man')
    assert proc.returncode == 1
    assert 'error:' in proc.stderr and 'not a checkout of the official ReferDINO' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_weights_come_from_exactly_one_source(tmp_path):
    proc = _run('configs/ytvos_swint.yaml', '--official-repo', str(tmp_path), '--random-weights',
                '--checkpoint', 'x.pth', '--frames', str(tmp_path), '--caption', 'a man')
    assert proc.returncode == 2 and 'not allowed with argument' in proc.stderr
    proc = _run('configs/ytvos_swint.yaml', '--official-repo', str(tmp_path), '--frames',
                str(tmp_path), '--caption', 'a man')
    assert proc.returncode == 2 and 'one of the arguments' in proc.stderr

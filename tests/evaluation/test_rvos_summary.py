"""Dataset aggregation of per-expression J / F (hand-computed)."""
import pytest

from mmrvos.evaluation.functional.rvos import format_rvos_table, summarize_rvos


def test_plain_mean_over_expressions():
    recs = [dict(J=0.5, F=0.7), dict(J=1.0, F=0.9), dict(J=0.0, F=0.2)]
    s = summarize_rvos(recs)
    assert s['J'] == pytest.approx(0.5)
    assert s['F'] == pytest.approx(0.6)
    assert s['J&F'] == pytest.approx(0.55)
    assert s['num_expressions'] == 3
    assert 'per_annotator' not in s and 'by_type' not in s


def test_ref_davis_mean_over_annotators_first():
    # annotator 0 has 3 expressions, annotator 1 has one: the dataset value
    # is the mean of the two annotator means, not of the 4 expressions
    recs = [
        dict(J=0.2, F=0.2, annotator=0),
        dict(J=0.4, F=0.4, annotator=0),
        dict(J=0.6, F=0.6, annotator=0),
        dict(J=1.0, F=0.0, annotator=1)
    ]
    s = summarize_rvos(recs)
    assert s['per_annotator'][0]['J'] == pytest.approx(0.4)
    assert s['J'] == pytest.approx((0.4 + 1.0) / 2)
    assert s['F'] == pytest.approx((0.4 + 0.0) / 2)
    with pytest.raises(ValueError, match='annotator'):
        summarize_rvos(recs + [dict(J=1, F=1, annotator=None)])


def test_by_type_and_table():
    recs = [
        dict(J=0.2, F=0.4, exp_type='motion'),
        dict(J=0.6, F=0.8, exp_type='static'),
        dict(J=1.0, F=1.0, exp_type='static')
    ]
    s = summarize_rvos(recs)
    assert s['by_type']['static']['J&F'] == pytest.approx(0.85)
    assert s['by_type']['motion']['num_expressions'] == 1
    table = format_rvos_table(s, title='toy')
    assert 'type static' in table and '85.000' in table
    with pytest.raises(ValueError):
        summarize_rvos([])

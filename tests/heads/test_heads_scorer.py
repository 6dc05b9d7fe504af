"""The streaming heads scorer: any split into merged parts, and any round trip through its flat
arrays, gives the tables of one accumulator over all snippets, exactly; its totals agree with
the per-edge scores."""

from __future__ import annotations

import numpy as np
import pytest
from heads.heads_data import make_samples

from codeprobe.errors import InputError
from codeprobe.probes.heads import EdgeArrays, HeadsAccumulator, HeadsSample, score_edges

KEYWORDS = ("if", "else", "for")


def scorer(**kw):
    return HeadsAccumulator(ks=(1, 3), max_offset=3, keywords=KEYWORDS, random_state=3, **kw)


def assert_same(a: HeadsAccumulator, b: HeadsAccumulator):
    x, y = a.to_arrays(), b.to_arrays()
    assert sorted(x) == sorted(y)
    for name in x:
        assert x[name].dtype == y[name].dtype, name
        np.testing.assert_array_equal(x[name], y[name], err_msg=name)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("random_baseline", [True, False])
def test_merge_of_any_split_is_one_accumulator(causal, random_baseline):
    samples = make_samples(7, count=9, causal=causal)
    whole = scorer(causal=causal, random_baseline=random_baseline).extend(samples)
    for cuts in ([0], [4], [1, 2, 8], [9], [3, 3, 6]):
        bounds = [0, *cuts, len(samples)]
        parts = [
            scorer(causal=causal, random_baseline=random_baseline).extend(samples[a:b])
            for a, b in zip(bounds[:-1], bounds[1:])
        ]
        merged = parts[0]
        for p in parts[1:]:
            merged.merge(p)
        assert merged.sample_ids == whole.sample_ids
        assert_same(merged, whole)


def test_round_trip_is_exact():
    acc = scorer().extend(make_samples(8, count=7))
    back = HeadsAccumulator.from_arrays(acc.to_arrays())
    assert_same(acc, back)
    back.add(make_samples(9, count=1)[0])  # restored accumulators keep working
    assert len(back.sample_ids) == 8
    empty = scorer()
    assert_same(empty, HeadsAccumulator.from_arrays(empty.to_arrays()))


def test_npz_round_trip(tmp_path):
    acc = scorer().extend(make_samples(10, count=4))
    np.savez(tmp_path / "a.npz", **acc.to_arrays())
    with np.load(tmp_path / "a.npz", allow_pickle=False) as f:
        assert_same(acc, HeadsAccumulator.from_arrays(dict(f)))


def test_totals_agree_with_edge_scores():
    samples = make_samples(11, count=6)
    acc = scorer().extend(samples)
    totals = acc.totals()
    hits = np.zeros((3, 4, 2, 6), dtype=np.int64)
    scorable = np.zeros((3, 4), dtype=np.int64)
    for s in samples:
        got = score_edges(s.attention, s.edges, ks=(1, 3))
        for r in range(3):
            mine = s.edges.relation == r
            hits[r] += got.hits[..., mine].sum(-1)
            scorable[r] += got.scorable[:, mine].sum(-1)
    present = totals.relations
    np.testing.assert_array_equal(totals.hits.reshape(len(present), 4, 2, 6), hits[present])
    np.testing.assert_array_equal(totals.scorable, scorable[present])
    acc_pooled = totals.accuracy()
    assert np.nanmax(acc_pooled) <= 1.0


def test_first_pass_on_threads_equals_add():
    samples = make_samples(12, count=5)
    a = scorer()
    for s in samples:
        a.add(s)
    b = scorer().extend(samples)
    assert_same(a, b)


def test_refusals():
    a, b = scorer(), HeadsAccumulator(ks=(1,))
    with pytest.raises(InputError):
        a.merge(b)
    with pytest.raises(InputError):
        a.merge(a)
    a.add(make_samples(1, count=1, n_layers=2)[0])
    with pytest.raises(InputError):
        a.add(make_samples(1, count=1, n_layers=3)[0])
    with pytest.raises(InputError):
        a.add(HeadsSample("bad", np.ones((2, 3, 2, 2)) / 2, EdgeArrays.empty(), ["x"]))
    with pytest.raises(InputError):
        HeadsAccumulator.from_arrays({"format": np.asarray(1)})

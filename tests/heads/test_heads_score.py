"""The vectorised per-edge scores against the loop oracle, and their sanity cases."""

from __future__ import annotations

import numpy as np
import pytest
from heads.heads_data import WORDS, random_attention, random_edges
from oracles import heads as oracle

from codeprobe.errors import InputError
from codeprobe.probes.heads import EdgeArrays, predictor_names, random_rows, rule_hits, score_edges, score_index
from codeprobe.probes.heads.baselines import greedy_predictors, sample_key

KS = (1, 2, 3, 10)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("exclude_self", [True, False])
def test_scores_match_oracle(seed, ties, causal, exclude_self):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 16))
    attention = random_attention(rng, 2, 3, n, ties=ties, causal=causal)
    edges = random_edges(rng, n, 12)
    got = score_edges(attention, edges, ks=KS, causal=causal, exclude_self=exclude_self)
    hits, sas, scorable = oracle.edge_scores(
        attention.tolist(), edges.relation, edges.head, edges.dep_start, edges.dep_end, KS, causal, exclude_self
    )
    np.testing.assert_array_equal(got.scorable, np.array(scorable, dtype=bool))
    want = np.array(hits, dtype=bool).reshape(4, len(KS), 6, len(edges))
    np.testing.assert_array_equal(got.hits, want)
    np.testing.assert_allclose(got.sas, np.array(sas).reshape(2, 6, len(edges)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("exclude_self", [True, False])
def test_long_rows_match_oracle(seed, ties, causal, exclude_self):
    """Rows of 80 tokens and more per k of 10 are folded into groups before their floor is
    selected (`best_ranks`): the same scores as the oracle's, also with many tied weights."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(80, 180))
    attention = random_attention(rng, 1, 2, n, ties=ties, causal=causal)
    edges = random_edges(rng, n, 15)
    got = score_edges(attention, edges, ks=KS, causal=causal, exclude_self=exclude_self)
    hits, sas, scorable = oracle.edge_scores(
        attention.tolist(), edges.relation, edges.head, edges.dep_start, edges.dep_end, KS, causal, exclude_self
    )
    np.testing.assert_array_equal(got.scorable, np.array(scorable, dtype=bool))
    np.testing.assert_array_equal(got.hits, np.array(hits, dtype=bool).reshape(4, len(KS), 2, len(edges)))
    np.testing.assert_allclose(got.sas, np.array(sas).reshape(2, 2, len(edges)), rtol=0, atol=1e-12)
    assert got.rank.min() >= 0 and got.rank.max() <= KS[-1]


def test_long_rows_attending_to_themselves_match_oracle():
    """In long rows the attending token's own weight stays in place for the floor: a row that
    attends most to itself still ranks every other token right (edges to all of them)."""
    rng = np.random.default_rng(7)
    n = 120
    attention = rng.random((1, 3, n, n))
    attention[..., np.arange(n), np.arange(n)] = 5.0
    attention /= attention.sum(axis=-1, keepdims=True)
    heads = np.repeat([5, 60], n - 1)
    deps = np.concatenate([np.delete(np.arange(n), 5), np.delete(np.arange(n), 60)])
    edges = EdgeArrays.of(np.zeros(heads.size, dtype=int), heads, deps, deps + 1)
    got = score_edges(attention, edges, ks=KS)
    hits, _, _ = oracle.edge_scores(
        attention.tolist(), edges.relation, edges.head, edges.dep_start, edges.dep_end, KS, False, True
    )
    np.testing.assert_array_equal(got.hits, np.array(hits, dtype=bool).reshape(4, len(KS), 3, len(edges)))


@pytest.mark.parametrize("n", [12, 100])
def test_signed_weights_match_oracle(n):
    """Weights below zero and -0.0 (tied with 0.0) take the general path: as the oracle's."""
    rng = np.random.default_rng(n)
    attention = random_attention(rng, 1, 2, n, ties=True) - 1.0 / n
    attention[..., ::3] = -0.0
    attention[..., 1::7] = 0.0
    edges = random_edges(rng, n, 15)
    got = score_edges(attention, edges, ks=KS)
    hits, sas, _ = oracle.edge_scores(
        attention.tolist(), edges.relation, edges.head, edges.dep_start, edges.dep_end, KS, False, True
    )
    np.testing.assert_array_equal(got.hits, np.array(hits, dtype=bool).reshape(4, len(KS), 2, len(edges)))
    np.testing.assert_allclose(got.sas, np.array(sas).reshape(2, 2, len(edges)), rtol=0, atol=1e-12)


def test_ties_go_to_the_lower_index():
    attention = np.full((1, 1, 5, 5), 0.2)
    edges = EdgeArrays.of([0, 0, 0], [2, 2, 2], [0, 1, 3], [1, 2, 4])
    got = score_edges(attention, edges, ks=(1, 2))
    assert got.hits[0, 0, 0].tolist() == [True, False, False]  # top-1 of row 2 = token 0
    assert got.hits[0, 1, 0].tolist() == [True, True, False]  # top-2 = 0, 1 (2 itself excluded)
    got = score_edges(attention, edges, ks=(1, 2), exclude_self=False)
    assert got.hits[0, 1, 0].tolist() == [True, True, False]
    edges = EdgeArrays.of([0], [1], [2], [3])
    assert score_edges(attention, edges, ks=(2,), exclude_self=False).hits[0, 0, 0].tolist() == [False]  # 0, 1
    assert score_edges(attention, edges, ks=(2,), exclude_self=True).hits[0, 0, 0].tolist() == [True]  # 0, 2


@pytest.mark.parametrize("causal", [False, True])
def test_gold_attention_scores_one(causal):
    """Attention one-hot on each edge's target scores 1.0 at k = 1 in every mode's own setup."""
    rng = np.random.default_rng(5)
    n = 30
    heads = rng.permutation(n)[:8]
    if causal:  # targets must lie left of the attending token
        heads = np.sort(rng.permutation(np.arange(10, n))[:8])
        start = heads - rng.integers(3, 10, 8)
    else:
        start = (heads + rng.integers(1, 6, 8)) % n
    end = np.minimum(start + rng.integers(1, 4, 8), np.where(causal, heads, n))
    edges = EdgeArrays.of(np.zeros(8, dtype=int), heads, start, end)
    for score, target in ((0, start), (2, end - 1)):
        attention = np.full((1, 1, n, n), 1e-3)
        attention[0, 0, heads, target] = 1.0
        got = score_edges(attention, edges, ks=(1,), causal=causal)
        assert got.scorable[score].all()
        assert got.hits[score, 0].mean() == 1.0
        assert got.hits[1, 0].mean() == 1.0  # any token of the span
    if not causal:
        attention = np.full((1, 1, n, n), 1e-3)
        attention[0, 0, start, heads] = 1.0
        keep = ~np.isin(start, heads)  # a token both attends as a dependent and as a head: drop
        got = score_edges(attention, EdgeArrays.of(*(x[keep] for x in (edges.relation, heads, start, end))))
        assert got.hits[3, 0].mean() == 1.0


def test_causal_edges_to_the_right_are_not_scorable():
    attention = np.tril(np.ones((1, 1, 4, 4)))
    attention /= attention.sum(-1, keepdims=True)
    edges = EdgeArrays.of([0, 0], [1, 3], [3, 0], [4, 2])
    got = score_edges(attention, edges, causal=True)
    assert got.scorable[:, 0].tolist() == [False, False, False, True]  # 1 -> [3, 4) looks right
    assert got.scorable[:, 1].tolist() == [True, True, True, False]  # 3 -> [0, 2) looks left
    assert not got.hits[:3, :, :, 0].any() and not got.hits[3, :, :, 1].any()


def test_bad_inputs():
    with pytest.raises(InputError):
        score_edges(np.ones((1, 3, 3)), EdgeArrays.empty())
    with pytest.raises(InputError):
        score_edges(np.ones((1, 1, 3, 3)) / 3, EdgeArrays.of([0], [0], [2], [4]))
    with pytest.raises(InputError):
        score_edges(np.ones((1, 1, 3, 3)) / 3, EdgeArrays.of([0], [0], [2], [2]))
    a = np.ones((1, 1, 3, 3)) / 3
    a[0, 0, 0, 1] = np.nan
    with pytest.raises(InputError):
        score_edges(a, EdgeArrays.of([0], [0], [2], [3]))
    with pytest.raises(InputError):
        EdgeArrays.of([0, 1], [0], [1], [2])
    with pytest.raises(InputError):
        score_index("dep->head", "last")
    assert score_index("head->dep", "last") == 2


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("causal", [False, True])
def test_rule_hits_match_oracle(seed, causal):
    rng = np.random.default_rng(seed)
    n = 25
    tokens = list(rng.choice(WORDS, n))
    edges = random_edges(rng, n, 30)
    keywords = ("if", "else", "for")
    names = predictor_names(4, keywords)
    got = rule_hits(edges, n, tokens, max_offset=4, keywords=keywords, causal=causal)
    want = oracle.rule_hits(names, edges.relation, edges.head, edges.dep_start, edges.dep_end, tokens, n, causal, True)
    np.testing.assert_array_equal(got, np.array(want, dtype=bool))
    for score in range(4):
        for k in (1, 3, 5):
            cands = np.arange(len(names))
            assert greedy_predictors(got[score], k, cands) == oracle.greedy(want[score], k, list(cands))


def test_offset_baseline_exact():
    """Every dependent starts 2 after its head: offset +2 hits all, and nothing else does."""
    n = 20
    heads = np.arange(0, 16, 2)
    edges = EdgeArrays.of(np.zeros(8, dtype=int), heads, heads + 2, heads + 4)
    hits = rule_hits(edges, n, None, max_offset=3)
    names = predictor_names(3, ())
    first = hits[score_index("head->dep", "first")]
    assert [names[p] for p in np.flatnonzero(first.all(axis=1))] == ["+2"]
    assert first.sum() == len(edges)
    assert greedy_predictors(first, 1, np.arange(len(names))) == [names.index("+2")]
    last = hits[score_index("head->dep", "last")]
    assert [names[p] for p in np.flatnonzero(last.any(axis=1))] == ["+3"]
    back = hits[score_index("dep->head")]
    assert [names[p] for p in np.flatnonzero(back.any(axis=1))] == ["-2"]


def test_keyword_rule_finds_the_next_keyword():
    tokens = ["if", "x", ":", "y", "else", ":", "z", "else"]
    edges = EdgeArrays.of([0], [0], [4], [5])
    names = predictor_names(1, ("else",))
    hits = rule_hits(edges, len(tokens), tokens, max_offset=1, keywords=("else",))
    assert [names[p] for p in np.flatnonzero(hits[0, :, 0])] == ["next:else"]


def test_random_rows_are_seeded_per_sample_and_causal():
    attending = np.array([0, 3, 5])
    a = random_rows(4, attending, 6, random_state=2, sample_id="x", causal=True)
    np.testing.assert_array_equal(a, random_rows(4, attending, 6, random_state=2, sample_id="x", causal=True))
    assert not np.array_equal(a, random_rows(4, attending, 6, random_state=2, sample_id="y", causal=True))
    assert a.shape == (4, 3, 6)
    np.testing.assert_allclose(a.sum(-1), 1.0, rtol=1e-6)
    assert (a[:, 0, 1:] == 0).all() and (a[:, 1, 4:] == 0).all() and (a[:, 2] > 0).all()


def test_random_rows_are_numpys_float32_uniforms_normalised():
    """The documented draws: numpy's float32 uniforms of the sample's generator, rows
    normalised in float32; written into `out` of any float type alike."""
    attending = np.array([1, 4, 6])
    for causal in (False, True):
        got = random_rows(5, attending, 7, random_state=3, sample_id="s", causal=causal)
        want = np.random.default_rng([3, sample_key("s")]).random((5, 3, 7), dtype=np.float32)
        if causal:
            want[:, np.arange(7)[None, :] > attending[:, None]] = 0.0
        want /= want.sum(axis=-1, keepdims=True)
        np.testing.assert_array_equal(got, want)
        out = np.empty((5, 3, 7))
        assert random_rows(5, attending, 7, random_state=3, sample_id="s", causal=causal, out=out) is out
        np.testing.assert_array_equal(out, want)


def test_edges_like_any_object_with_the_arrays():
    class Other:
        relation = np.array([1], dtype=np.int32)
        head, dep_start, dep_end = np.array([0]), np.array([1]), np.array([2])

    e = EdgeArrays.like(Other())
    assert len(e) == 1 and e.relation.dtype == np.int64


def test_edges_move_onto_the_kept_tokens():
    """An edge is kept when its head and its whole dependent span were read; indices are then
    the kept tokens' (token 2 was not read: the edge reaching over it is dropped)."""
    from types import SimpleNamespace

    from codeprobe.probes.heads import on_kept_tokens

    edges = SimpleNamespace(
        relation=np.array([0, 1, 2, 0]),
        head=np.array([0, 1, 3, 2]),
        dep_start=np.array([1, 2, 4, 3]),
        dep_end=np.array([2, 4, 5, 5]),
    )
    moved, keep = on_kept_tokens(edges, np.array([0, 1, 3, 4]), 5)
    assert keep.tolist() == [True, False, True, False]
    assert moved.relation.tolist() == [0, 2]
    assert moved.head.tolist() == [0, 2]
    assert moved.dep_start.tolist() == [1, 3] and moved.dep_end.tolist() == [2, 4]

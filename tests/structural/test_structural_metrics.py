"""The structural probe's metrics against networkx's minimum spanning tree and scipy's Spearman
(tests/oracles/structural.py) on gold token trees of real code, their conventions (ties,
constant rows, strict roots) and sanity values (gold scores 1.0; the linear baseline)."""

from __future__ import annotations

import string
import textwrap
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from oracles.structural import oracle_dspr, oracle_macro_average, oracle_nspr, oracle_uuas

from codeprobe.errors import InputError
from codeprobe.probes.structural import (
    DEFAULT_MIN_SNIPPETS,
    HEWITT_MANNING_LENGTHS,
    corpus_uuas,
    depth_scores,
    distance_scores,
    dspr,
    length_macro_average,
    linear_baseline,
    linear_distance,
    nspr,
    qualifying_lengths,
    root_accuracy,
    spanning_tree,
    uuas,
    uuas_counts,
)
from codeprobe.syntax import parse


def real_trees(max_tokens: int = 120) -> list:
    """Gold token trees of the functions of two standard-library modules (3 to `max_tokens`
    tokens)."""
    out = []
    for module in (textwrap, string):
        tree = parse(Path(module.__file__).read_text(encoding="utf-8"), "python")
        for i in np.flatnonzero(tree.types == "function_definition").tolist():
            tt = parse(textwrap.dedent(tree.node_text(i)), "python").token_tree()
            if 3 <= len(tt) <= max_tokens:
                out.append(tt)
    assert len(out) >= 20
    return out


TREES = real_trees()


def predictions(tt, rng) -> list[np.ndarray]:
    """Distance matrices to score: the gold plus noise, squared L2 distances of random vectors,
    and small integers (many ties)."""
    n = len(tt)
    noisy = tt.distance + rng.normal(0, 1.5, (n, n))
    x = rng.normal(size=(n, 8))
    l2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    ties = rng.integers(0, 4, (n, n))
    return [(noisy + noisy.T) / 2, l2, ties + ties.T]


def test_uuas_matches_networkx_minimum_spanning_tree():
    rng = np.random.default_rng(0)
    scores = []
    for tt in TREES:
        noisy, l2, _ = predictions(tt, rng)
        for p in (noisy, l2, tt.distance, linear_distance(len(tt))):
            assert uuas(p, tt.heads) == oracle_uuas(p, tt.heads)
        scores.append(uuas(noisy, tt.heads))
    assert 0.1 < np.mean(scores) < 0.9  # the noisy gold scores neither nothing nor everything


def test_spanning_tree_weighs_the_minimum_even_with_ties():
    rng = np.random.default_rng(1)
    for tt in TREES[:15]:
        for p in predictions(tt, rng):
            heads = spanning_tree(p)
            n = len(tt)
            assert (heads == -1).sum() == 1 and heads[0] == -1
            graph = nx.Graph()
            graph.add_weighted_edges_from((i, j, float(p[i, j])) for i in range(n) for j in range(i + 1, n))
            best = nx.minimum_spanning_tree(graph).size(weight="weight")
            assert p[np.arange(1, n), heads[1:]].sum() == pytest.approx(best)
            assert nx.is_tree(nx.Graph([(t, int(h)) for t, h in enumerate(heads) if h >= 0]))


def test_ties_go_to_the_lower_token_and_the_earlier_tree_token():
    assert spanning_tree(np.ones((5, 5))).tolist() == [-1, 0, 0, 0, 0]
    # 0-1 and 0-2 tie at 1: token 1 joins first; token 3 is 2 from both 0 and 1 and stays with 0.
    d = np.array([[0, 1, 1, 2], [1, 0, 3, 2], [1, 3, 0, 3], [2, 2, 3, 0]])
    assert spanning_tree(d).tolist() == [-1, 0, 0, 0]
    # Only the upper triangle is read.
    lower = d.copy()
    lower[np.tril_indices(4, -1)] = 99
    assert spanning_tree(lower).tolist() == [-1, 0, 0, 0]


@pytest.mark.parametrize("include_self", [False, True])
def test_dspr_matches_spearmanr_row_by_row(include_self):
    rng = np.random.default_rng(2)
    for tt in TREES:
        for p in (*predictions(tt, rng), linear_distance(len(tt))):
            assert dspr(p, tt.distance, include_self=include_self) == pytest.approx(
                oracle_dspr(p, tt.distance, include_self), abs=1e-12
            )


def test_nspr_matches_spearmanr():
    rng = np.random.default_rng(3)
    for tt in TREES:
        n = len(tt)
        for p in (tt.depth + rng.normal(0, 1, n), rng.normal(size=n), rng.integers(0, 3, n), np.arange(n)):
            assert nspr(p, tt.depth) == pytest.approx(oracle_nspr(p, tt.depth), abs=1e-12)


def test_constant_predictions_score_zero_and_constant_gold_rows_are_left_out():
    star = np.array([-1, 0, 0, 0, 0])
    gold = np.where(np.eye(5, dtype=bool), 0, 2)
    gold[0, 1:] = gold[1:, 0] = 1  # token 0 is adjacent to all: its row is constant
    rng = np.random.default_rng(4)
    p = rng.random((5, 5))
    p = p + p.T
    assert dspr(p, gold) == pytest.approx(oracle_dspr(p, gold))
    assert dspr(np.ones((5, 5)), gold) == 0.0
    assert nspr(np.zeros(5), np.array([0, 1, 1, 1, 1])) == 0.0
    assert uuas(gold, star) == 1.0
    with pytest.raises(InputError, match="all equal"):
        nspr(np.arange(5), np.ones(5))


def test_root_accuracy_needs_the_gold_root_strictly_shallowest():
    heads = np.array([-1, 0, 1, 1])
    assert root_accuracy(np.array([0.1, 0.5, 0.9, 0.7]), heads)
    assert not root_accuracy(np.array([0.5, 0.1, 0.9, 0.7]), heads)
    assert not root_accuracy(np.zeros(4), heads)  # a tie is a miss, though argmin would say 0
    assert not root_accuracy(np.array([0.1, 0.1, 0.9, 0.7]), heads)
    assert root_accuracy(np.array([0.9, 0.1, 0.9]), np.array([1, -1, 1]))


def test_gold_scores_one_and_scores_ignore_monotone_rescaling():
    rng = np.random.default_rng(5)
    for tt in TREES:
        g = tt.distance
        assert distance_scores(g, tt.heads, g).uuas == 1.0 and dspr(g, g) == 1.0
        assert dspr(g, g, include_self=True) == 1.0
        assert depth_scores(tt.depth, tt.heads, tt.depth).nspr == 1.0
        assert root_accuracy(tt.depth, tt.heads)
        _, l2, _ = predictions(tt, rng)
        # A probe's squared distances or their roots: the same tree, the same ranks.
        assert uuas(l2, tt.heads) == uuas(np.sqrt(l2), tt.heads)
        assert dspr(l2, g) == pytest.approx(dspr(np.sqrt(l2), g), abs=1e-12)


def test_linear_baseline_is_the_chain_of_neighbours():
    tt = parse("def area(w, h):\n    return w * h\n", "python").token_tree()
    line = linear_baseline(tt.heads, tt.distance)
    # Gold edges between neighbours: def-area, (-w, return-w, w-*.
    assert (line.uuas_correct, line.uuas_total) == (4, 11)
    for tt in TREES:
        n = len(tt)
        line = linear_baseline(tt.heads, tt.distance)
        assert (line.uuas_correct, line.uuas_total) == uuas_counts(linear_distance(n), tt.heads)
        assert line.uuas == pytest.approx(oracle_uuas(linear_distance(n), tt.heads))
        assert line.dspr == pytest.approx(oracle_dspr(linear_distance(n), tt.distance), abs=1e-12)
        assert spanning_tree(linear_distance(n)).tolist() == list(range(-1, n - 1))
        # Under the first-token rule the gold root is token 0: a left-to-right chain always finds it.
        assert root_accuracy(np.arange(n), tt.heads)


def test_corpus_uuas_sums_edges_over_snippets():
    assert corpus_uuas(np.array([1, 9]), np.array([4, 10])) == 10 / 14
    with pytest.raises(InputError):
        corpus_uuas(np.array([0]), np.array([0]))


def test_length_macro_average_matches_per_length_dictionaries():
    rng = np.random.default_rng(6)
    lengths = rng.integers(3, 60, 300)
    values = rng.random(300)
    for over in (
        qualifying_lengths(lengths),
        qualifying_lengths(lengths, min_snippets=1, length_range=HEWITT_MANNING_LENGTHS),
        qualifying_lengths(lengths, min_snippets=8),
    ):
        avg = length_macro_average(values, lengths, over)
        assert avg.value == pytest.approx(oracle_macro_average(values, lengths, over), abs=1e-12)
        assert avg.lengths.tolist() == sorted(set(over.tolist()))
        assert avg.counts.tolist() == [int((lengths == n).sum()) for n in avg.lengths]
    # A resample keeps the lengths chosen on the full data; lengths it lacks are skipped.
    over = qualifying_lengths(lengths)
    pick = rng.integers(0, 300, 300)
    avg = length_macro_average(values[pick], lengths[pick], over)
    assert avg.value == pytest.approx(oracle_macro_average(values[pick], lengths[pick], over), abs=1e-12)
    assert set(avg.lengths.tolist()) <= set(over.tolist())
    assert np.isnan(length_macro_average(values, lengths, np.array([1000])).value)


def test_qualifying_lengths_rule():
    lengths = np.array([5, 5, 6, 7, 7, 7, 60, 60])
    assert DEFAULT_MIN_SNIPPETS == 2
    assert qualifying_lengths(lengths).tolist() == [5, 7, 60]
    assert qualifying_lengths(lengths, min_snippets=1, length_range=(5, 50)).tolist() == [5, 6, 7]
    assert qualifying_lengths(lengths, min_snippets=3).tolist() == [7]
    with pytest.raises(InputError):
        qualifying_lengths(lengths, min_snippets=0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: uuas(np.zeros((3, 2)), np.array([-1, 0, 0])),  # not square
        lambda: uuas(np.full((3, 3), np.nan), np.array([-1, 0, 0])),  # not finite
        lambda: uuas(np.zeros((2, 2)), np.array([-1, 0, 0])),  # shapes differ
        lambda: uuas(np.zeros((1, 1)), np.array([-1])),  # no edge
        lambda: uuas(np.zeros((3, 3)), np.array([-1, 2, 1])),  # a cycle
        lambda: uuas(np.zeros((3, 3)), np.array([-1, -1, 0])),  # two roots
        lambda: uuas(np.zeros((3, 3)), np.array([-1, 0, 3])),  # out of range
        lambda: uuas(np.zeros((3, 3)), np.array([-1.0, 0, 0])),  # not integers
        lambda: dspr(np.zeros((2, 2)), np.zeros((2, 2))),  # one distance per row
        lambda: dspr(np.zeros((3, 3)), np.zeros((4, 4))),
        lambda: dspr(np.zeros((3, 3)), np.ones((3, 3)) - np.eye(3)),  # no gold ranking at all
        lambda: nspr(np.zeros(3), np.zeros(4)),
        lambda: root_accuracy(np.zeros(3), np.array([-1, 0])),
        lambda: length_macro_average(np.zeros(3), np.zeros(2, int), np.array([3])),
    ],
)
def test_bad_input_is_an_input_error(call):
    with pytest.raises(InputError):
        call()

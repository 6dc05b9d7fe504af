"""The control tree (Hewitt & Liang's control task for the structural probe): a valid tree on
real code (networkx), its path lengths and depths against networkx's, deterministic per seed, the
same behaviour for every token of a type, and a probe that trains and scores on it."""

from __future__ import annotations

import inspect

import networkx as nx
import numpy as np
import pytest

from codeprobe.probes.structural import DistanceProbe
from codeprobe.probes.structural.control import (
    BEHAVIOURS,
    CONTROL_RULE,
    ControlTree,
    behaviours,
    control_heads,
    control_tree,
    control_trees,
)
from codeprobe.probes.structural.training import fit_stacked
from codeprobe.syntax import parse, token_tree


@pytest.fixture(scope="module")
def gold_trees():
    """Token trees of real standard-library and codeprobe functions (strings collapsed)."""
    import json
    import textwrap

    sources = [inspect.getsource(f) for f in (json.dumps, textwrap.dedent, inspect.getsource)]
    sources += [inspect.getsource(token_tree), inspect.getsource(fit_stacked)]
    return [parse(code, "python").token_tree(collapse_strings=True) for code in sources]


def _graph(tree) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(range(len(tree)))
    g.add_edges_from((int(h), t) for t, h in enumerate(tree.heads) if h >= 0)
    return g


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_a_control_tree_is_a_tree_rooted_at_the_first_token(gold_trees, seed):
    for gold in gold_trees:
        c = control_tree(gold, seed)
        assert isinstance(c, ControlTree) and c.rule == CONTROL_RULE and c.tokens is gold.tokens
        assert nx.is_tree(_graph(c)) and c.heads[0] == -1 and (c.heads[1:] >= 0).all()
        assert c.heads[-1] == 0  # the last token hangs from the first, whatever its type


def test_distances_and_depths_are_networkx_path_lengths(gold_trees):
    for gold in gold_trees[:3]:
        c = control_tree(gold, 3)
        lengths = dict(nx.all_pairs_shortest_path_length(_graph(c)))
        expected = np.array([[lengths[i][j] for j in range(len(c))] for i in range(len(c))])
        np.testing.assert_array_equal(c.distance, expected)
        np.testing.assert_array_equal(c.depth, expected[0])
        assert not c.distance.flags.writeable


def test_each_type_has_one_behaviour_in_every_snippet_and_the_seed_fixes_it(gold_trees):
    trees = control_trees(gold_trees, 5)
    seen: dict[str, int] = {}
    for gold, c in zip(gold_trees, trees):
        kinds = behaviours(gold.tokens.texts, 5)
        n = len(c)
        for t, (text, kind) in enumerate(zip(gold.tokens.texts, kinds.tolist())):
            assert seen.setdefault(text, kind) == kind  # the same type, the same behaviour
            if 0 < t < n - 1:  # the two conventional positions aside
                assert c.heads[t] == {"first": 0, "last": n - 1, "left": t - 1}[BEHAVIOURS[kind]]
    again = control_trees(gold_trees, 5)
    assert all(np.array_equal(a.heads, b.heads) for a, b in zip(trees, again))
    other = control_trees(gold_trees, 6)
    assert not all(np.array_equal(a.heads, b.heads) for a, b in zip(trees, other))
    # uniform over the three behaviours: every one of them is drawn on this many types
    counts = np.bincount(behaviours(sorted(seen), 5), minlength=3)
    assert (counts > len(seen) / 6).all()


def test_two_tokens_and_cycles_that_a_naive_rule_would_make():
    # "left" at the last token with "last" before it would be a 2-cycle; the convention breaks it
    heads = control_heads(np.array([1, 0, 1, 2], dtype=np.int8))
    assert heads.tolist() == [-1, 0, 3, 0]
    assert control_heads(np.array([2, 1], dtype=np.int8)).tolist() == [-1, 0]


def test_a_distance_probe_fits_the_control_tree(gold_trees):
    """A probe trains and scores on control trees as on gold ones: the estimators take them."""
    rng = np.random.default_rng(0)
    trees = control_trees(gold_trees, 0)
    X = [rng.normal(size=(len(t), 8)).astype(np.float32) for t in trees]
    probe = DistanceProbe(4, random_state=0).fit(X[:3], trees[:3], X_valid=X[3:], y_valid=trees[3:])
    scores = probe.evaluate(X[3:], trees[3:])
    assert 0 <= scores.uuas <= 1 and np.isfinite(scores.dspr).all()

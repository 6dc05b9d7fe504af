"""Fast path vs the reference oracle on real code: D from the syntax core vs networkx all-pairs
BFS, scores vs loops, with random row-stochastic token attention (model attention is covered
in test_probe.py)."""

from __future__ import annotations

import numpy as np
import pytest
from oracles import cat as cat_oracle
from shared_data import cosqa_functions, java_methods

from codeprobe.probes.cat import PAPER_TYPES, cat_scores
from codeprobe.syntax import ast_distance, parse, uast_distance


def real_snippets():
    return [("python", c) for c in cosqa_functions()[:8]] + [("java", c) for c in java_methods(8)]


@pytest.mark.parametrize("language,snippet", real_snippets(), ids=lambda x: x if isinstance(x, str) else x[0])
def test_fast_path_matches_oracle_on_real_snippets(language, snippet):
    _, code = snippet
    tree = parse(code, language)
    tokens = tree.tokens()
    assert tokens.node.tolist() == cat_oracle.leaves(tree)
    rng = np.random.default_rng(len(tokens))
    a = rng.random((3, len(tokens), len(tokens)))
    a /= a.sum(axis=-1, keepdims=True)
    for uast, dist in ((True, uast_distance), (False, ast_distance)):
        d = dist(tokens)
        d_oracle = cat_oracle.distance(tree, uast=uast)
        np.testing.assert_array_equal(d, d_oracle)
        for kept in (None, set(PAPER_TYPES[language])):
            idx = np.flatnonzero([kept is None or t in kept for t in tokens.types])
            fast = cat_scores(a[:, idx[:, None], idx[None, :]], d[idx[:, None], idx[None, :]])
            for layer in range(3):
                want = cat_oracle.score_kept(tokens.types, a[layer].tolist(), d_oracle, kept)
                assert fast[layer] == pytest.approx(want, abs=1e-6)

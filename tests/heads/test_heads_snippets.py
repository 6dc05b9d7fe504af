"""The per-test-snippet hits behind the heads scores (`SnippetHits`: what a checkpoint series'
onsets rest on) add up to the test scores, and survive their file."""

from __future__ import annotations

import numpy as np
import pytest
from heads.heads_data import make_samples

from codeprobe.probes.heads import SCORES, HeadsAccumulator
from codeprobe.probes.heads.results import SnippetHits, evaluate


def test_heads_snippet_hits_add_up_to_the_test_scores():
    def acc():
        return HeadsAccumulator(ks=(1, 3), max_offset=4, random_state=1)

    test = acc().extend(make_samples(201, count=12, n_relations=2))
    result = evaluate(acc().extend(make_samples(101, count=12, n_relations=2)), test, n_resamples=50)
    hits = result.snippets
    assert hits.sample_ids == tuple(test.sample_ids) and hits.ks == (1, 3)
    assert hits.hits.shape == (12, len(hits.names), 4, 2) and hits.scorable.shape == (12, len(hits.names), 4)
    for row in result.scores:
        column = hits.names.index(row.name)
        s = SCORES.index((row.direction, row.dependent))
        scorable = hits.scorable[:, column, s]
        assert scorable.sum() == row.test_edges
        if row.test_edges:
            got = hits.hits[:, column, s, (1, 3).index(row.k)].sum() / scorable.sum()
            assert got == pytest.approx(row.test.mean, abs=1e-12)
            share = hits.accuracy(row.direction, row.dependent, row.k)[:, column]
            assert np.array_equal(np.isnan(share), scorable == 0)
    again = SnippetHits.from_arrays(hits.to_arrays())
    assert again.sample_ids == hits.sample_ids and again.names == hits.names
    assert np.array_equal(again.hits, hits.hits) and np.array_equal(again.scorable, hits.scorable)

"""Selection on validation, report on test: planted heads, offsets and keywords are found; the
chosen head and its test score agree with the loop oracle; intervals pair the model with its
baselines."""

from __future__ import annotations

import numpy as np
import pytest
from heads.heads_data import make_samples, random_attention
from oracles import heads as oracle

from codeprobe.errors import InputError
from codeprobe.probes.heads import EdgeArrays, HeadsAccumulator, HeadsSample
from codeprobe.probes.heads.results import evaluate

KEYWORDS = ("if", "else")


def acc(**kw):
    return HeadsAccumulator(ks=(1, 3), max_offset=4, keywords=KEYWORDS, random_state=1, **kw)


def planted(seed, count, *, offset=None, keyword=False, gold_head=(1, 2)):
    """Snippets of one relation (code 0): dependents at head + offset, at the next "else", or
    anywhere; attention random except `gold_head`, one-hot on each edge's dependent."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        n = 24
        tokens = list(rng.choice(["x", "y", "(", ")"], n))
        heads = np.sort(rng.choice(np.arange(0, 12), 3, replace=False))
        if offset is not None:
            start = heads + offset
        elif keyword:
            start = heads + rng.integers(1, 9, 3)
            for s in start:
                tokens[s] = "else"
            for h, s in zip(heads, start):  # no "else" between head and dependent
                for j in range(h + 1, s):
                    if tokens[j] == "else" and j not in start:
                        tokens[j] = "x"
            start = np.array([next(j for j in range(h + 1, n) if tokens[j] == "else") for h in heads])
        else:
            start = rng.integers(12, n, 3)
        edges = EdgeArrays.of(np.zeros(3, dtype=int), heads, start, start + 1)
        attention = random_attention(rng, 2, 3, n)
        if gold_head is not None:
            layer, head = gold_head
            attention[layer, head, heads] = 0.0
            attention[layer, head, heads, start] = 1.0
        out.append(HeadsSample(f"p{seed}-{i}", attention, edges, tokens))
    return out


def test_planted_head_is_chosen_and_beats_every_baseline():
    result = evaluate(acc().extend(planted(1, 30)), acc().extend(planted(2, 30)), relation_names=["call:func->args"])
    row = result.table("head->dep", "first", 1)[0]
    assert (row.name, row.layer, row.head) == ("call:func->args", 1, 2)
    assert row.validation == 1.0 and row.test.mean == 1.0
    assert row.beats_all and row.difference.low > 0
    assert set(row.baselines) == {"offset", "offset+keyword", "random"}
    s = result.summary_of("head->dep", "first", 1)
    assert (s.n_relations, s.mean, s.share_beating_all) == (1, 1.0, 1.0)
    sas = [x for x in result.sas if x.direction == "head->dep"][0]
    assert (sas.layer, sas.head, sas.test.mean) == (1, 2, 1.0)
    assert sas.difference.low > 0


def test_offset_baseline_is_found_and_not_beaten():
    result = evaluate(
        acc().extend(planted(3, 20, offset=2, gold_head=None)), acc().extend(planted(4, 20, offset=2, gold_head=None))
    )
    row = result.table("head->dep", "first", 1)[0]
    assert row.rules["offset"] == ("+2",)
    assert row.baselines["offset"].mean == 1.0
    assert row.best_baseline == "offset"
    assert not row.beats_all and row.difference.high < 0
    back = result.table("dep->head", "first", 1)[0]
    assert back.rules["offset"] == ("-2",) and back.baselines["offset"].mean == 1.0


def test_keyword_baseline_is_found():
    result = evaluate(
        acc().extend(planted(5, 20, keyword=True, gold_head=None)),
        acc().extend(planted(6, 20, keyword=True, gold_head=None)),
    )
    row = result.table("head->dep", "first", 1)[0]
    assert row.rules["offset+keyword"] == ("next:else",)
    assert row.baselines["offset+keyword"].mean == 1.0
    assert row.best_baseline == "offset+keyword"
    assert row.validation_baselines["offset"] < 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_selection_matches_oracle(seed):
    valid = make_samples(100 + seed, count=10, n_relations=2)
    test = make_samples(200 + seed, count=10, n_relations=2)
    result = evaluate(acc().extend(valid), acc().extend(test), n_resamples=200)

    def pooled(samples, relation, score, ki):
        hits = np.zeros((2, 3))
        total = 0
        for s in samples:
            e = s.edges
            h, _, scorable = oracle.edge_scores(
                s.attention.tolist(), e.relation, e.head, e.dep_start, e.dep_end, (1, 3), False, True
            )
            for x in range(len(e)):
                if e.relation[x] == relation and scorable[score][x]:
                    total += 1
                    hits += np.array([[h[score][ki][la][hd][x] for hd in range(3)] for la in range(2)])
        return hits, total

    for row in result.scores:
        score = oracle.SCORES.index((row.direction, row.dependent))
        ki = (1, 3).index(row.k)
        v_hits, v_total = pooled(valid, row.relation, score, ki)
        best = int(np.argmax((v_hits / v_total).ravel()))
        assert divmod(best, 3) == (row.layer, row.head)
        assert row.validation == v_hits.ravel()[best] / v_total
        t_hits, t_total = pooled(test, row.relation, score, ki)
        assert row.test_edges == t_total
        if t_total:
            assert row.test.mean == pytest.approx(t_hits.ravel()[best] / t_total, abs=1e-15)
            if np.isfinite(row.test.low):
                assert row.test.low <= row.test.mean <= row.test.high


def test_differences_are_paired():
    """A baseline equal to the model on every edge differs by exactly 0 in every resample."""
    result = evaluate(
        acc().extend(planted(3, 12, offset=2, gold_head=(0, 0))),
        acc().extend(planted(4, 12, offset=2, gold_head=(0, 0))),
    )
    row = result.table("head->dep", "first", 1)[0]
    assert row.test.mean == row.baselines["offset"].mean == 1.0
    d = row.differences["offset"]
    assert (d.mean, d.low, d.high) == (0.0, 0.0, 0.0)


def test_refusals():
    with pytest.raises(InputError):
        evaluate(acc(), acc())
    with pytest.raises(InputError):
        evaluate(acc().extend(planted(1, 2)), HeadsAccumulator(ks=(1,)).extend(planted(1, 2)))


def test_empty_test_split_gives_nan():
    result = evaluate(acc().extend(planted(1, 4)), acc())
    row = result.table()[0]
    assert np.isnan(row.test.mean) and not row.beats_all
    assert result.as_dict()["scores"][0]["test"]["mean"] is None

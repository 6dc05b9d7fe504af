"""Parts of a dataset's heads scores: a split's snippets (`subset`), relation codes moved into a
vocabulary (`relabelled`), the random-weights baseline, the per-layer map and the interval of the
mean over relations."""

from __future__ import annotations

import numpy as np
import pytest
from heads.heads_data import random_attention
from test_heads_results import acc, planted

from codeprobe.errors import InputError
from codeprobe.probes.heads import EdgeArrays, HeadsSample
from codeprobe.probes.heads.results import evaluate


def two_relations(seed: int, count: int) -> list[HeadsSample]:
    """Snippets with relation 0 (dependent at head + 1) and relation 1 (anywhere)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        n = 20
        edges = EdgeArrays.of([0, 1, 1], [2, 4, 9], [3, 12, 15], [4, 14, 16])
        out.append(HeadsSample(f"s{seed}-{i}", random_attention(rng, 2, 3, n), edges, ["x"] * n))
    return out


def test_subset_equals_an_accumulator_of_those_snippets():
    samples = two_relations(1, 10)
    whole = acc().extend(samples)
    ids = [s.sample_id for s in samples[1::3]]
    part = whole.subset(set(ids) | {"not-there"})
    alone = acc().extend(samples[1::3])
    assert part.sample_ids == ids
    for name, x in alone.to_arrays().items():
        np.testing.assert_array_equal(part.to_arrays()[name], x, err_msg=name)
    assert whole.subset([]).sample_ids == []


def test_relabelled_renames_and_drops_relations():
    samples = two_relations(2, 6)
    renamed = acc().extend(samples).relabelled(np.array([5, -1]))
    t = renamed.tables()
    assert set(t["q_relation"]) == {5} and set(t["e_relation"]) == {5}
    assert renamed.totals().edges.tolist() == [6]
    one = acc().extend(samples).relabelled(np.array([0, -1]))
    only0 = acc().extend(
        [HeadsSample(s.sample_id, s.attention, EdgeArrays.of([0], [2], [3], [4]), s.tokens) for s in samples]
    )
    for name, x in only0.to_arrays().items():  # random attention is drawn for the rows read: other rows
        if not name.startswith("q_random"):
            np.testing.assert_array_equal(one.to_arrays()[name], x, err_msg=name)
    with pytest.raises(InputError, match="relabelling covers"):
        acc().extend(samples).relabelled(np.array([0]))


def test_sample_tables_relabelled_then_added_equals_relabelled_accumulator():
    samples = two_relations(3, 4)
    a = acc()
    for s in samples:
        a.add(a.first_pass(s).relabelled(np.array([1, 0])))
    b = acc().extend(samples).relabelled(np.array([1, 0]))
    for name, x in b.to_arrays().items():
        np.testing.assert_array_equal(a.to_arrays()[name], x, err_msg=name)


def test_random_weights_baseline_is_chosen_on_validation_and_paired():
    valid, test = planted(11, 20), planted(12, 20)
    weights = planted(11, 20, gold_head=None), planted(12, 20, gold_head=None)  # same edges, no gold head
    result = evaluate(
        acc().extend(valid), acc().extend(test), random_weights=(acc().extend(weights[0]), acc().extend(weights[1]))
    )
    row = result.table("head->dep", "first", 1)[0]
    assert "random weights" in row.baselines and row.random_weights_head is not None
    assert row.differences["random weights"].low > 0 and row.beats_all
    # The random-weights model with the planted head is as good as the model: not beaten.
    same = evaluate(acc().extend(valid), acc().extend(test), random_weights=(acc().extend(valid), acc().extend(test)))
    row = same.table("head->dep", "first", 1)[0]
    assert row.differences["random weights"].mean == 0.0 and not row.beats_all
    with pytest.raises(InputError, match="other test snippets"):
        evaluate(acc().extend(valid), acc().extend(test), random_weights=(acc().extend(valid), acc().extend(valid)))


def test_by_layer_holds_each_layers_best_head_on_test():
    result = evaluate(acc().extend(planted(5, 20)), acc().extend(planted(6, 20)))
    row = result.table("head->dep", "first", 1)[0]
    assert len(row.by_layer) == 2 and row.by_layer[1] == 1.0 and row.by_layer[0] < 1.0


def test_mean_over_relations_has_a_joint_interval():
    result = evaluate(acc().extend(two_relations(7, 30)), acc().extend(two_relations(8, 30)))
    s = result.summary_of("head->dep", "first", 3)
    rows = result.table("head->dep", "first", 3)
    assert s.n_relations == 2 and s.mean == pytest.approx(np.mean([r.test.mean for r in rows]))
    assert s.mean_ci.low <= s.mean <= s.mean_ci.high
    assert s.mean_difference_ci.low <= s.mean_difference <= s.mean_difference_ci.high

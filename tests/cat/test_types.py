"""Frequent-type rates and strategies against the loop oracle."""

from __future__ import annotations

import numpy as np
import pytest
from oracles import cat as cat_oracle

from codeprobe.errors import InputError
from codeprobe.probes.cat import PAPER_TYPES, TypeRateAccumulator, default_strategy, select_types

TYPES = ["identifier", "(", ")", ",", "def", ":", "return", "string_content"]


def random_samples(seed, count=12, n_layers=3, ties=False):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        n = int(rng.integers(0, 14))
        types = [TYPES[k] for k in rng.choice(len(TYPES), n, p=[0.3, 0.15, 0.15, 0.1, 0.05, 0.1, 0.05, 0.1])]
        a = rng.integers(0, 4, (n_layers, n, n)) / 4 if ties else rng.random((n_layers, n, n))
        out.append((types, a.astype(np.float32)))
    return out


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("q", [0.75, 0.5])
def test_rates_match_loop_oracle(ties, q):
    samples = random_samples(1 + ties, ties=ties)
    acc = TypeRateAccumulator(q)
    for types, a in samples:
        acc.update(types, a)
    rates = acc.result()
    num, hit, total = cat_oracle.type_rates([t for t, _ in samples], [a.tolist() for _, a in samples], q)
    assert rates.total_tokens == total and rates.n_samples == len(samples)
    assert dict(zip(rates.types, rates.num.tolist())) == num
    for layer in range(3):
        got = {t: h for t, h in zip(rates.types, rates.hit[layer].tolist()) if h}
        assert got == hit[layer]
        assert set(rates.top_k(3)[layer]) == cat_oracle.top_types(num, hit[layer], total, 3)
    np.testing.assert_array_equal(rates.eligible, [num[t] > total for t in rates.types])


def test_rate_table_is_printable_and_tabular():
    acc = TypeRateAccumulator()
    for types, a in random_samples(3):
        acc.update(types, a)
    rates = acc.result()
    text = rates.format(1)
    assert "rank" in text and "identifier" in text
    rows = rates.rows()
    assert {len(v) for v in rows.values()} == {3 * len(rates.types)}
    ranked = rows["rank"][(rows["layer"] == 1) & (rows["rank"] > 0)]
    assert sorted(ranked.tolist()) == list(range(1, int(rates.eligible.sum()) + 1))
    assert rates.to_arrow().num_rows == 3 * len(rates.types)


def test_result_is_a_snapshot():
    acc = TypeRateAccumulator()
    acc.update(["a", "b"], np.ones((2, 2, 2)))
    first = acc.result()
    acc.update(["c"], np.ones((2, 1, 1)))
    assert first.types == ("a", "b") and acc.result().types == ("a", "b", "c")


@pytest.mark.parametrize("cuts", [(0, 12), (0, 0, 5, 5, 12), (0, 1, 2, 7, 12)])
def test_merged_tables_equal_one_accumulator_over_all_samples(cuts):
    """Runs of samples accumulated apart (a pipeline's shards; empty runs included) merge into
    the table of one accumulator over all of them in the same order: counts, totals, and the
    order of first appearance."""
    from codeprobe.probes.cat.types import TypeRates

    samples = random_samples(3)
    whole = TypeRateAccumulator(0.75)
    parts = []
    for lo, hi in zip(cuts, cuts[1:]):
        acc = TypeRateAccumulator(0.75)
        for types, a in samples[lo:hi]:
            acc.update(types, a)
            whole.update(types, a)
        parts.append(acc.result())
    merged, want = TypeRates.merged(parts), whole.result()
    assert merged.types == want.types and merged.total_tokens == want.total_tokens
    assert merged.n_samples == want.n_samples == 12 and merged.quantile == want.quantile
    np.testing.assert_array_equal(merged.num, want.num)
    np.testing.assert_array_equal(merged.hit, want.hit)
    with pytest.raises(InputError):
        TypeRates.merged([parts[0], TypeRateAccumulator(0.5).result()])
    with pytest.raises(InputError):
        TypeRates.merged([])


def test_accumulator_checks_shapes():
    acc = TypeRateAccumulator()
    with pytest.raises(InputError):
        acc.update(["a", "b"], np.ones((2, 3, 3)))
    acc.update(["a"], np.ones((2, 1, 1)))
    with pytest.raises(InputError):
        acc.update(["a"], np.ones((3, 1, 1)))


def test_strategies():
    assert select_types("all", language="ruby", n_layers=2) == [None, None]
    paper = select_types("paper", language="python", n_layers=2)
    assert paper == [frozenset(PAPER_TYPES["python"])] * 2
    assert default_strategy("python") == "paper" and default_strategy("ruby") == "all"
    with pytest.raises(InputError):
        select_types("paper", language="ruby", n_layers=2)
    with pytest.raises(InputError):
        select_types("topk", language="python", n_layers=2)
    with pytest.raises(InputError):
        select_types("nope", language="python", n_layers=2)

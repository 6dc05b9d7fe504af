"""The streaming CAT scorer: any split of the samples into merged parts, and any round trip
through its flat arrays, gives the result of one accumulator over all samples, bit for bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from cat.test_dataset import make_samples

from codeprobe.errors import InputError
from codeprobe.probes.cat import CATAccumulator, SkippedSample, score_samples
from codeprobe.probes.cat.dataset import head_mean

CASES = [  # (types, heads per sample or None, head_rows)
    ("paper", None, True),
    ("all", 2, True),
    ("all", 2, False),
    ("topk", None, True),
    ("topk", 2, True),
    ("topk", 2, False),
]


def stream(seed=11, count=14, n_heads=None):
    """Samples with skipped ones first, between and last."""
    s = make_samples(seed, count=count, n_heads=n_heads)
    return [
        SkippedSample("first", "parse_error"),
        *s[:5],
        SkippedSample("mid", "too_long"),
        SkippedSample("mid2", "too_long"),
        *s[5:],
        SkippedSample("last", "parse_error"),
    ]


def scorer(types, head_rows=True, **kw):
    return CATAccumulator(language="python", types=types, top_k=3, random_state=4, head_rows=head_rows, **kw)


def assert_same(a, b):
    """Two CATResults are equal, bit for bit."""
    for name, column in a.samples.columns().items():
        other = b.samples.columns()[name]
        assert column.dtype == other.dtype, name
        np.testing.assert_array_equal(column, other, err_msg=name)
    for name, column in a.summary.columns().items():
        np.testing.assert_array_equal(column, b.summary.columns()[name], err_msg=name)
    for name, column in a.rates.rows().items():
        np.testing.assert_array_equal(column, b.rates.rows()[name], err_msg=name)
    assert a.kept_types == b.kept_types and a.settings == b.settings


def parts_of(samples, cuts):
    return [samples[i:j] for i, j in zip([0, *cuts], [*cuts, len(samples)])]


@pytest.mark.parametrize(("types", "n_heads", "head_rows"), CASES)
def test_any_split_and_merge_tree_gives_the_one_accumulator_result(types, n_heads, head_rows):
    samples = stream(n_heads=n_heads)
    whole = scorer(types, head_rows).extend(samples).result({"model": "m"})
    rng = np.random.default_rng(0)
    for n_parts in (2, 3, 5):
        cuts = sorted(rng.choice(np.arange(1, len(samples)), n_parts - 1, replace=False).tolist())
        parts = [scorer(types, head_rows).extend(p) for p in parts_of(samples, cuts)]
        left = scorer(types, head_rows)
        for p in parts:
            left.merge(p)
        assert_same(left.result({"model": "m"}), whole)
        right = parts[-1]  # a.merge(b.merge(c ...)): associative; the parts are left as they were
        for p in reversed(parts[:-1]):
            right = scorer(types, head_rows).merge(p).merge(right)
        assert_same(right.result({"model": "m"}), whole)
    # Parts that are only skipped samples, or empty, change nothing.
    empty = scorer(types, head_rows).merge(scorer(types, head_rows)).merge(scorer(types, head_rows).extend(samples[:1]))
    assert_same(empty.merge(scorer(types, head_rows).extend(samples[1:])).result({"model": "m"}), whole)


@pytest.mark.parametrize(("types", "n_heads", "head_rows"), CASES)
def test_parts_merged_in_another_order_give_the_same_rows_rates_and_kept_types(types, n_heads, head_rows):
    """Merging puts the other's samples after; in another order the rows come in that order,
    with the same values, rate counts and kept types."""
    samples = stream(n_heads=n_heads)
    a, b = samples[:9], samples[9:]
    ab = scorer(types, head_rows).extend(a).merge(scorer(types, head_rows).extend(b)).result()
    ba = scorer(types, head_rows).extend(b).merge(scorer(types, head_rows).extend(a)).result()
    assert ab.kept_types == ba.kept_types

    def by_sample(result):
        rows = result.samples
        order = np.lexsort((rows.head, rows.layer, rows.sample_id.astype(str)))
        return {k: v[order] for k, v in rows.columns().items()}

    for name, column in by_sample(ab).items():
        np.testing.assert_array_equal(column, by_sample(ba)[name], err_msg=name)
    for r in (ab.rates, ba.rates):
        assert r.total_tokens == ab.rates.total_tokens and r.n_samples == ab.rates.n_samples
    index = {t: i for i, t in enumerate(ba.rates.types)}
    at = [index[t] for t in ab.rates.types]
    np.testing.assert_array_equal(ab.rates.num, ba.rates.num[at])
    np.testing.assert_array_equal(ab.rates.hit, ba.rates.hit[:, at])


@pytest.mark.parametrize(("types", "n_heads", "head_rows"), CASES)
def test_arrays_and_file_round_trips_are_exact(types, n_heads, head_rows, tmp_path):
    samples = stream(n_heads=n_heads)
    acc = scorer(types, head_rows).extend(samples[:12])
    arrays = acc.to_arrays()
    assert all(v.dtype != object for v in arrays.values())  # an .npz without pickle
    back = CATAccumulator.from_arrays(arrays, spill_dir=tmp_path)
    again = back.to_arrays()
    assert arrays.keys() == again.keys()
    for name, array in arrays.items():
        assert array.dtype == again[name].dtype, name
        np.testing.assert_array_equal(array, again[name], err_msg=name)
    assert_same(back.result(), acc.result())

    path = acc.save(tmp_path / "part.npz", _key=np.array("step-key"))
    with np.load(path, allow_pickle=False) as z:
        assert str(z["_key"]) == "step-key"
    loaded = CATAccumulator.load(path)
    assert_same(loaded.result(), acc.result())
    # A restored accumulator goes on as the saved one would have: more samples, more parts.
    whole = scorer(types, head_rows).extend(samples).result()
    assert_same(loaded.extend(samples[12:]).result(), whole)
    rest = scorer(types, head_rows).extend(samples[12:]).save(tmp_path / "rest.npz")
    assert_same(CATAccumulator.load(path).merge(CATAccumulator.load(rest)).result(), whole)


def test_library_and_accumulator_agree():
    samples = stream(n_heads=2)
    for types in ("paper", "all", "topk"):
        lib = score_samples(samples, language="python", types=types, top_k=3, random_state=4, settings={"m": 1})
        assert_same(scorer(types).extend(samples).result({"m": 1}), lib)


def test_head_rows_false_keeps_head_mean_rows_and_float32_head_mean_inputs():
    """Without head rows: the head-mean rows only; under topk the kept inputs are the float32
    head mean, so the result is the library's on those."""
    samples = stream(n_heads=3)
    for types in ("all", "topk"):
        got = scorer(types, head_rows=False).extend(samples).result()
        assert set(got.samples.head.tolist()) == {-1}
        if types == "all":  # scored up front on the float64 head mean: the full result's mean rows
            full = scorer(types).extend(samples).result()
            mean = full.samples.head == -1
            for name, column in full.samples.columns().items():
                np.testing.assert_array_equal(got.samples.columns()[name], column[mean], err_msg=name)
        else:
            pooled = [
                x if isinstance(x, SkippedSample) else replace(x, attention=head_mean(x.attention).astype(np.float32))
                for x in samples
            ]
            assert_same(got, scorer(types).extend(pooled).result())
    arrays = scorer("topk", head_rows=False).extend(samples).to_arrays()
    assert arrays["input_attention"].dtype == np.float32
    assert arrays["input_attention"].size == sum(
        3 * len(x.types) ** 2 for x in samples if not isinstance(x, SkippedSample)
    )


def test_kept_types_given():
    samples = stream()
    kept = [["identifier", "("], None, ["def", ":", "return"]]
    got = CATAccumulator(language="python", types="topk", kept_types=kept).extend(samples)
    assert not got.deferred
    assert got.kept_types() == [frozenset(kept[0]), None, frozenset(kept[2])]
    result = got.result()
    assert result.kept_types == (("(", "identifier"), None, (":", "def", "return"))
    back = CATAccumulator.from_arrays(got.to_arrays())
    assert back.kept_given == got.kept_given
    assert_same(back.result(), result)
    with pytest.raises(InputError, match="kept type sets"):
        CATAccumulator(language="python", kept_types=kept[:2]).add(samples[1])


def test_first_passes_on_threads_and_what_does_not_fit():
    samples = stream()
    acc = scorer("paper")
    passes = [acc.first_pass(x) for x in samples]  # pure: nothing added yet
    with pytest.raises(InputError, match="no sample could be scored \\(no samples\\)"):
        acc.result()
    for x in passes:
        acc.add(x)
    assert_same(acc.result(), scorer("paper").extend(samples).result())
    with pytest.raises(InputError, match="other settings"):
        scorer("all").add(passes[1])
    with pytest.raises(InputError, match="different settings"):
        scorer("paper").merge(scorer("all"))
    with pytest.raises(InputError, match="itself"):
        acc.merge(acc)
    with pytest.raises(InputError, match="attention"):
        scorer("all").extend(make_samples(1, 2)).merge(scorer("all").extend(make_samples(1, 2, n_heads=2)))
    with pytest.raises(InputError, match="parse_error; too_long"):
        scorer("topk").extend([x for x in samples if isinstance(x, SkippedSample)]).result()
    with pytest.raises(InputError, match="named _"):
        acc.save("x.npz", key=np.array("k"))
    with pytest.raises(InputError, match="no member"):
        CATAccumulator.from_arrays({"format": np.array(1)})


def test_close_lets_go_of_the_kept_inputs():
    acc = scorer("topk").extend(stream())
    with acc:
        assert len(acc.result().samples) == 18 * 3
    with pytest.raises(InputError, match="no samples"):
        acc.result()

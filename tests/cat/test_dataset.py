"""Dataset-level scoring: both passes, baselines, skips, per-head rows and the tables."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from oracles import cat as cat_oracle

from codeprobe.errors import InputError
from codeprobe.probes.cat import (
    MEAN_HEAD,
    CATSample,
    SkippedSample,
    cat_scores,
    positional_attention,
    random_attention,
    score_samples,
)

TYPES = ["identifier", "(", ")", ",", "def", ":", "return", "=", "for", "]"]


def make_samples(seed, count=10, n_layers=3, n_heads=None):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        n = int(rng.integers(1, 16))
        types = [TYPES[t] for t in rng.integers(0, len(TYPES), n)]
        positions = np.sort(rng.choice(3 * n, n, replace=False))
        d = rng.integers(1, 9, (n, n))
        d = np.minimum(d, d.T)
        np.fill_diagonal(d, 0)
        shape = (n_layers,) + ((n_heads,) if n_heads else ()) + (n, n)
        out.append(CATSample(f"s{k}", types, positions, d, rng.random(shape).astype(np.float32)))
    return out


def oracle_scores(samples, kept_per_layer, q=0.75):
    """{(sample_id, layer): (score, random, positional)} by loops."""
    out = {}
    for s in samples:
        a = s.attention.astype(np.float64)
        if a.ndim == 4:
            a = a.mean(axis=1)
        rand = random_attention(len(s.types), 0, s.sample_id).tolist()
        pos = [[float(np.exp(-abs(int(p) - int(r)))) for r in s.positions] for p in s.positions]
        d = s.distance.tolist()
        for layer, kept in enumerate(kept_per_layer):
            out[(s.sample_id, layer)] = tuple(
                cat_oracle.score_kept(s.types, m, d, kept, q) for m in (a[layer].tolist(), rand, pos)
            )
    return out


def check_against_oracle(result, samples, kept_per_layer, q=0.75):
    want = oracle_scores(samples, kept_per_layer, q)
    rows = result.samples
    mean_rows = np.flatnonzero(rows.head == MEAN_HEAD)
    assert len(mean_rows) == len(want)
    for r in mean_rows:
        expect = want[(rows.sample_id[r], int(rows.layer[r]))]
        got = (rows.score[r], rows.random_baseline[r], rows.positional_baseline[r])
        for g, e in zip(got, expect):
            assert (np.isnan(g) and e is None) or g == pytest.approx(e, abs=1e-9)


@pytest.mark.parametrize("q", [0.75, 0.6])
def test_all_and_paper_match_oracle(q):
    samples = make_samples(0)
    check_against_oracle(score_samples(samples, language="python", types="all", quantile=q), samples, [None] * 3, q)
    kept = set(["]", "def", ")", "for", "identifier", ":", "if", "return", "(", "=", ","])
    res = score_samples(samples, language="python", types="paper", quantile=q)
    check_against_oracle(res, samples, [kept] * 3, q)
    assert res.kept_types == (tuple(sorted(kept)),) * 3


def test_topk_two_passes_match_oracle():
    samples = make_samples(1, count=15)
    res = score_samples(samples, language="python", types="topk", top_k=3)
    num, hit, total = cat_oracle.type_rates(
        [s.types for s in samples], [s.attention.astype(np.float64).tolist() for s in samples]
    )
    kept = [cat_oracle.top_types(num, hit[layer], total, 3) for layer in range(3)]
    assert [set(k) for k in res.kept_types] == kept
    check_against_oracle(res, samples, kept)
    assert res.settings["top_k"] == 3 and res.settings["types"] == "topk"


def test_per_head_rows():
    samples = make_samples(2, count=4, n_heads=2)
    res = score_samples(samples, language="python", types="topk", top_k=4)
    rows = res.samples
    assert len(rows) == 4 * 3 * 3 and set(rows.head.tolist()) == {MEAN_HEAD, 0, 1}
    check_against_oracle(res, samples, [set(k) for k in res.kept_types])
    for s in samples:
        for layer, kept in enumerate(res.kept_types):
            idx = np.flatnonzero([t in kept for t in s.types])
            sub = s.attention[layer][:, idx[:, None], idx[None, :]]
            want = cat_scores(sub, s.distance[idx[:, None], idx[None, :]])
            sel = (rows.sample_id == s.sample_id) & (rows.layer == layer) & (rows.head >= 0)
            np.testing.assert_array_equal(rows.score[sel], want)
    assert len(res.summary) == 3 * 3


def test_skips_and_summary():
    samples = make_samples(3, count=6)
    one = CATSample("one", ["identifier"], np.array([0]), np.zeros((1, 1), int), np.ones((3, 1, 1)))
    other = CATSample("other", ["string_content"], np.array([0]), np.zeros((1, 1), int), np.ones((3, 1, 1)))
    res = score_samples(
        [SkippedSample("bad", "parse_error")] + samples + [one, other], language="python", types="paper"
    )
    rows = res.samples
    assert list(dict.fromkeys(rows.sample_id.tolist())) == ["bad"] + [s.sample_id for s in samples] + ["one", "other"]
    reasons = dict(zip(rows.sample_id.tolist(), rows.skip_reason.tolist()))
    assert reasons["bad"] == "parse_error" and reasons["one"] == "empty_union" and reasons["other"] == "no_kept_tokens"
    summary = res.summary
    used = ~np.isnan(rows.score)
    for layer in range(3):
        sel = (rows.layer == layer) & used
        i = np.flatnonzero(summary.layer == layer)[0]
        assert summary.n_used[i] == sel.sum() and summary.n_skipped[i] == 9 - sel.sum()
        assert summary.score[i] == pytest.approx(rows.score[sel].mean())
        assert summary.positional_baseline[i] == pytest.approx(np.nanmean(rows.positional_baseline[sel]))
        assert "parse_error=1" in summary.skip_reasons[i]
    assert "layer" in summary.format()


def test_summary_intervals_are_each_rows_own_seeded_bootstrap():
    """The (layer, head) rows are summarised on threads; each interval is the one its own
    seeded stream gives, whatever the order the rows finish in."""
    from codeprobe.probes.cat.results import MEAN_HEAD
    from codeprobe.uncertainty import mean_ci, paired_difference

    res = score_samples(make_samples(3, count=12, n_heads=2), language="python", types="all")
    rows, summary = res.samples, res.summary
    assert len(summary) == 3 * 3
    for i in range(len(summary)):
        layer, head = int(summary.layer[i]), int(summary.head[i])
        sel = (rows.layer == layer) & (rows.head == head) & ~np.isnan(rows.score)
        seed = (0, layer, head + 1)
        score = rows.score[sel]
        assert tuple(summary.score_ci[i]) == (
            mean_ci(score, random_state=seed).low,
            mean_ci(score, random_state=seed).high,
        )
        if head == MEAN_HEAD:
            diff = paired_difference(score, rows.random_baseline[sel], random_state=seed)
            assert (summary.minus_random[i], *summary.minus_random_ci[i]) == (diff.mean, diff.low, diff.high)
        else:
            assert np.isnan(summary.random_ci[i]).all()


def test_rows_merged_in_runs_keep_order(monkeypatch):
    """Scored samples are merged into runs as they stream in; skipped ones break the runs and
    keep their places."""
    from codeprobe.probes.cat import sample_store

    samples = make_samples(5, count=9)
    stream = [SkippedSample("first", "parse_error"), *samples[:4], SkippedSample("mid", "too_long"), *samples[4:]]
    whole = score_samples(stream, language="python", types="paper").samples
    monkeypatch.setattr(sample_store, "MERGE_ROWS", 2)
    runs = score_samples(stream, language="python", types="paper").samples
    for name in ("sample_id", "layer", "head", "n_tokens", "skip_reason"):
        assert getattr(runs, name).tolist() == getattr(whole, name).tolist()
    np.testing.assert_array_equal(runs.score, whole.score)
    assert list(dict.fromkeys(runs.sample_id.tolist())) == [x.sample_id for x in stream]


def test_parquet_roundtrip(tmp_path):
    samples = make_samples(4, count=3)
    res = score_samples(samples, language="python", types="all", settings={"model": "m"})
    res.to_parquet(tmp_path / "x.parquet")
    table = pq.read_table(tmp_path / "x.parquet")
    assert table.column_names == list(res.samples.columns())
    assert table.num_rows == len(res.samples)
    assert b'"model": "m"' in table.schema.metadata[b"codeprobe"]
    np.testing.assert_array_equal(table.column("score").to_numpy(), res.samples.score)


def test_nothing_to_score():
    with pytest.raises(InputError, match="parse_error"):
        score_samples([SkippedSample("x", "parse_error")], language="python")
    with pytest.raises(InputError):
        score_samples(make_samples(5, 1, n_layers=2) + make_samples(6, 1, n_layers=3), language="python", types="all")


def test_baselines_are_seeded_per_sample():
    a = random_attention(5, 0, "s3")
    np.testing.assert_allclose(a.sum(axis=1), 1.0)
    np.testing.assert_array_equal(a, random_attention(5, 0, "s3"))
    assert not np.array_equal(a, random_attention(5, 0, "s4"))
    assert not np.array_equal(a, random_attention(5, 1, "s3"))
    np.testing.assert_allclose(positional_attention(np.array([0, 2])), [[1, np.exp(-2)], [np.exp(-2), 1]])

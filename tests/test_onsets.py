"""The onset rule ("first-departure-that-stays") on synthetic curves with per-snippet noise: an
onset at a known step, none, a transient spike that must not count, a decrease, a departure at
the last step, duplicates left out, snippets matched by id."""

from __future__ import annotations

import json

import numpy as np
import pytest

from codeprobe.onsets import DOWN, RULE, UP, Onset, SnippetScores, onset

STEPS = (0, 10, 20, 50, 100, 200)
N = 150


def curve(shifts, *, seed=0, noise=0.02) -> np.ndarray:
    """(len(shifts), N) per-snippet scores: each snippet's own level (shared by every step: the
    pairing) plus per-step noise, centred so that a step's mean moves by exactly its shift."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.6, N)
    jitter = rng.normal(0, noise, (len(shifts), N))
    jitter -= jitter.mean(axis=1, keepdims=True)
    return base + jitter + np.asarray(shifts, dtype=float)[:, None]


def test_an_onset_at_a_known_step_that_stays():
    found = onset(STEPS, curve([0, 0, 0, 0.04, 0.05, 0.06]), seed=1)
    assert (found.rule, found.reference_step, found.step, found.direction) == (RULE, 0, 50, UP)
    assert found.steps_after == 2
    assert [s for s, _ in found.differences] == [10, 20, 50, 100, 200]
    crossing = [iv for s, iv in found.differences if s < 50]
    assert all(iv.low <= 0 <= iv.high for iv in crossing)  # before it: no departure
    assert found.at_onset.low > 0 and found.at_onset.mean == pytest.approx(0.04)
    assert all(iv.n == N for _, iv in found.differences)


def test_a_flat_curve_has_no_onset():
    found = onset(STEPS, curve([0] * len(STEPS)), seed=1)
    assert (found.step, found.direction, found.steps_after, found.at_onset) == (None, None, None, None)
    assert len(found.differences) == len(STEPS) - 1
    assert all(not iv.excludes_zero for _, iv in found.differences)


def test_a_transient_spike_does_not_count():
    spike = onset(STEPS, curve([0, 0, 0.08, 0, 0, 0]), seed=1)
    assert spike.step is None
    assert dict(spike.differences)[20].low > 0  # it departed at step 20, and came back
    # A spike before a lasting rise: the onset is the rise, not the spike.
    later = onset(STEPS, curve([0, 0.08, 0, 0, 0.05, 0.05]), seed=1)
    assert (later.step, later.direction) == (100, UP)
    # A rise that falls back below its start: the lasting side is down, from where it is below.
    flipped = onset(STEPS, curve([0, 0.05, 0.05, -0.05, -0.05, -0.06]), seed=1)
    assert (flipped.step, flipped.direction) == (50, DOWN)


def test_a_decrease_is_an_onset_down():
    found = onset(STEPS, curve([0, 0, -0.03, -0.05, -0.06, -0.07]), seed=1)
    assert (found.step, found.direction, found.steps_after) == (20, DOWN, 3)
    assert found.at_onset.high < 0


def test_a_departure_at_the_last_step_counts_unconfirmed():
    found = onset(STEPS, curve([0, 0, 0, 0, 0, 0.05]), seed=1)
    assert (found.step, found.direction, found.steps_after) == (200, UP, 0)


def test_duplicates_are_no_points_of_their_own():
    scores = curve([0, 0.05, 0.05])
    scores[2] = scores[1]  # step 20 serves step 10's weights: the same scores
    counted = onset((0, 10, 20), scores, seed=1)
    assert (counted.step, counted.steps_after) == (10, 1)  # a repeat would confirm it
    found = onset((0, 10, 20), scores, seed=1, duplicates={20})
    assert (found.step, found.direction, found.steps_after) == (10, UP, 0)
    assert [s for s, _ in found.differences] == [10]
    assert dict(found.differences)[10] == dict(counted.differences)[10]  # seeded by step


def test_snippets_are_matched_by_id_and_missing_ones_dropped():
    scores = curve([0, 0, 0.05, 0.05])
    ids = [f"s{i}" for i in range(N)]
    rng = np.random.default_rng(3)
    results = []
    for step_scores in scores:
        keep = np.sort(rng.choice(N, N - 30, replace=False))  # each step misses 30 snippets
        order = rng.permutation(keep)  # in an order of its own
        results.append(SnippetScores(tuple(ids[i] for i in order), ("L0",), step_scores[order][:, None]))
    aligned = np.stack([r.aligned(ids, "L0") for r in results])
    assert aligned.shape == (4, N)
    present = np.isfinite(aligned)
    assert (present.sum(axis=1) == N - 30).all()
    assert np.array_equal(aligned[present], scores[present])  # each value at its own snippet
    assert np.isnan(results[0].aligned(ids, "L1")).all()  # a row it does not have
    assert np.isnan(results[0].aligned(["unknown"], "L0")).all()

    found = onset((0, 10, 20, 50), aligned, seed=1)
    assert (found.step, found.direction) == (20, UP)
    for (_, iv), i in zip(found.differences, (1, 2, 3)):
        assert iv.n == int((present[0] & present[i]).sum())  # pairs scored at both steps only


def test_a_step_without_pairs_does_not_depart():
    scores = curve([0, 0.05, 0.05, 0.05])
    scores[2] = np.nan  # step 20 has no scored snippet
    found = onset((0, 10, 20, 50), scores, seed=1)
    assert dict(found.differences)[20].n == 0
    assert (found.step, found.steps_after) == (50, 0)  # the gap ends the run that began at 10


def test_the_record_is_seeded_and_json_ready():
    a = onset(STEPS, curve([0, 0, 0, 0.04, 0.05, 0.06]), seed=(7, 3))
    b = onset(STEPS, curve([0, 0, 0, 0.04, 0.05, 0.06]), seed=(7, 3))
    assert a == b
    record = json.loads(json.dumps(a.as_dict()))
    assert record["rule"] == RULE and record["step"] == 50 and record["direction"] == "up"
    assert record["reference_step"] == 0 and record["steps_after"] == 2
    assert [d["step"] for d in record["differences"]] == [10, 20, 50, 100, 200]
    assert set(record["differences"][0]) == {"step", "mean", "ci", "n", "distinguishable"}
    assert record["differences"][2]["distinguishable"] is True
    one = onset((5,), curve([0]), seed=0)
    assert one == Onset(RULE, 5, None, None, ())


def test_refusals():
    with pytest.raises(ValueError, match="ascending"):
        onset((0, 20, 10), curve([0, 0, 0]))
    with pytest.raises(ValueError, match="expected"):
        onset((0, 10), curve([0, 0, 0]))
    with pytest.raises(ValueError, match="duplicate"):
        onset((0,), curve([0]), duplicates={0})
    with pytest.raises(ValueError, match="expected"):
        SnippetScores(("a", "b"), (0,), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="unique"):
        SnippetScores(("a", "a"), (0,), np.zeros((2, 1)))

"""Control tasks (Hewitt & Liang, arXiv:1909.03368): each token type's label is a draw from the
task's empirical label distribution, the same for every occurrence, fixed by the seed."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from codeprobe.errors import InputError
from codeprobe.probes.diagnostic import ControlTask

N_TYPES = 20_000


def _types(n: int = N_TYPES) -> list[str]:
    return [f"name_{k}" for k in range(n)]


def test_distribution_is_the_training_tokens_empirical_one():
    labels = [np.array([0, 0, 1]), np.array([0, 2, 2, 0])]
    control = ControlTask.from_labels(labels, 4, random_state=3)
    assert control.distribution == pytest.approx((4 / 7, 1 / 7, 2 / 7, 0.0))
    assert control.n_classes == 4 and control.random_state == 3


def test_types_labels_follow_the_distribution():
    """Chi-square goodness of fit over 20,000 types: the labels are draws from the task's
    distribution (a wrong inverse CDF, an off-by-one or a skewed hash fails it)."""
    p = np.array([0.5, 0.25, 0.15, 0.07, 0.03])
    control = ControlTask(distribution=tuple(p), random_state=0)
    counts = np.bincount(control.labels(_types()), minlength=p.size)
    assert stats.chisquare(counts, p * N_TYPES).pvalue > 1e-3
    assert np.abs(counts / N_TYPES - p).max() < 0.015


def test_an_empty_class_is_never_drawn():
    control = ControlTask(distribution=(0.0, 0.6, 0.0, 0.4, 0.0), random_state=1)
    counts = np.bincount(control.labels(_types(5000)), minlength=5)
    assert counts[[0, 2, 4]].sum() == 0 and counts[1] > counts[3] > 0


def test_same_type_same_label_in_any_call_and_order():
    control = ControlTask(distribution=(0.3, 0.3, 0.4), random_state=7)
    texts = ["x", "(", "x", "def", "y", "(", "x"]
    ids = control.labels(texts)
    assert ids[0] == ids[2] == ids[6] and ids[1] == ids[5]
    again = control.labels(["def", "x", "y", "("][::-1])
    assert again.tolist() == [ids[1], ids[4], ids[0], ids[3]]


def test_another_seed_gives_another_assignment():
    """Two seeds agree on a type about as often as two independent draws do (sum of p^2)."""
    p = (0.4, 0.3, 0.2, 0.1)
    a = ControlTask(distribution=p, random_state=0).labels(_types())
    b = ControlTask(distribution=p, random_state=1).labels(_types())
    assert abs((a == b).mean() - np.square(p).sum()) < 0.02


def test_bad_training_labels_are_refused():
    with pytest.raises(InputError, match="needs training labels"):
        ControlTask.from_labels([], 3)
    with pytest.raises(InputError, match="class ids must lie"):
        ControlTask.from_labels([np.array([0, 3])], 3)
    with pytest.raises(InputError, match="random_state"):
        ControlTask.from_labels([np.array([0])], 3, random_state=1.5)

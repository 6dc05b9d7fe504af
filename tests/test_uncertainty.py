"""Bootstrap intervals: resampled in batches (memory flat in the number of snippets) with the same
draws, hence the same interval, as scipy's single batch."""

from __future__ import annotations

import numpy as np
from scipy import stats

from codeprobe import uncertainty
from codeprobe.uncertainty import mean_ci


def test_batched_bootstrap_equals_one_batch(monkeypatch):
    x = np.random.default_rng(1).random(3000)
    whole = stats.bootstrap(
        (x,),
        lambda a, axis: a.mean(axis=axis),
        n_resamples=2000,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(0),
    )
    monkeypatch.setattr(uncertainty, "_BATCH_VALUES", 3000 * 7)  # 7 resamples per batch
    got = mean_ci(x, random_state=0)
    assert (got.low, got.high) == (whole.confidence_interval.low, whole.confidence_interval.high)
    assert got.low < x.mean() < got.high

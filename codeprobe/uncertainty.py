"""Bootstrap confidence intervals over snippets: the uncertainty reported with every score.

Every score codeprobe reports is a mean over snippets (AST-Probe's F1 is macro-averaged over
test snippets; a layer's CAT-score is the mean of per-sample CAT-scores), so its uncertainty
comes from which snippets happened to be sampled. We resample snippets with replacement:
- `mean_ci`: 95% percentile bootstrap interval of the mean (scipy.stats.bootstrap,
  method="percentile").
- `paired_difference`: the mean of per-snippet differences a_i - b_i and its percentile
  interval, resampling the *pairs* (the same snippet scored two ways), which is what a claim
  such as "layer 3 beats the embedding layer" rests on.

Both are seeded (`random_state`), so a rerun gives the same interval. NaN entries (a sample
that could not be scored) are dropped first, pairwise for differences.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
N_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A mean with its bootstrap interval.

    Attributes:
        mean: the statistic on the original sample (NaN when there was no sample).
        low, high: the interval's ends (NaN with fewer than 2 samples).
        n: how many samples it rests on.
    """

    mean: float
    low: float
    high: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies wholly above or below 0: the difference is
        distinguishable from none at this confidence."""
        return bool(self.low > 0 or self.high < 0)

    def as_list(self) -> list[float | None]:
        """[low, high] for JSON (None for NaN)."""
        return [_num(self.low), _num(self.high)]

    def as_dict(self) -> dict:
        return {"mean": _num(self.mean), "ci": self.as_list(), "n": self.n, "distinguishable": self.excludes_zero}


def mean_ci(
    values, *, random_state: int | tuple[int, ...] = 0, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES
) -> Interval:
    """Percentile bootstrap interval of the mean of `values` (1-d; NaN dropped)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    return _bootstrap((x,), lambda a, axis: a.mean(axis=axis), random_state, confidence, n_resamples)


def paired_difference(
    a, b, *, random_state: int | tuple[int, ...] = 0, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES
) -> Interval:
    """Mean of a_i - b_i over snippets scored both ways, with a paired percentile interval.

    Raises:
        ValueError: `a` and `b` differ in length (they must be the same snippets, in order).
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired samples need equal lengths, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    return mean_ci(a[keep] - b[keep], random_state=random_state, confidence=confidence, n_resamples=n_resamples)


# Values per resampling batch: 32 MiB of float64 split among the cores, because callers
# bootstrap one row per core at once (`CATSummary.from_samples`) and scipy holds a few arrays
# of a batch's size: the peak stays that of one thread.
_BATCH_VALUES = max(1 << 16, (1 << 22) // (os.cpu_count() or 1))


def _bootstrap(data, statistic, random_state, confidence, n_resamples) -> Interval:
    n = data[0].size
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    point = float(statistic(data[0], axis=-1))
    if n < 2 or np.all(data[0] == data[0][0]):
        # One value, or all equal: every resample gives the same mean.
        low = high = point if n >= 2 else float("nan")
        return Interval(point, low, high, n)
    # Resamples in batches of at most _BATCH_VALUES values: memory stays flat in n, and the
    # random draws, hence the interval, are the same as in one batch.
    res = stats.bootstrap(
        data,
        statistic,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        batch=max(1, _BATCH_VALUES // n),
        rng=np.random.default_rng(random_state),
    )
    return Interval(point, float(res.confidence_interval.low), float(res.confidence_interval.high), n)


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 6)

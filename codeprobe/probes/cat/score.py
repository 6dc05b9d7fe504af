"""The CAT-score of one snippet, for all layers (and heads) at once.

Conventions (spec "CAT-probing", step 6): over the n x n matrices of the kept tokens, diagonal
included, theta_A = q-quantile of A and theta_D = (1 - q)-quantile of D, both with numpy's
linear interpolation over all n^2 cells; M_A = A > theta_A and M_D = D < theta_D (strict);
s = |M_A and M_D| / |M_A or M_D|. The score is NaN when the union is empty (e.g. a single token),
which callers report as a skipped sample.
"""

from __future__ import annotations

import math

import numpy as np

from codeprobe.errors import InputError

DEFAULT_QUANTILE = 0.75


def check_quantile(quantile: float) -> float:
    """Return `quantile` as a float, or raise InputError unless 0 < quantile < 1."""
    q = float(quantile)
    if not 0.0 < q < 1.0:
        raise InputError(f"quantile must lie strictly between 0 and 1, got {quantile!r}")
    return q


def linear_quantile(rows: np.ndarray, q: float) -> np.ndarray:
    """q-quantile of each row of `rows` (B, N), N >= 1, as float64 (B,).

    Bit-identical to np.quantile(rows, q, axis=-1) (method "linear"): the same virtual index,
    neighbours and interpolation formula, computed with one np.partition (at the lower
    neighbour) and without np.quantile's per-call overhead, which dominates for the small
    matrices of one snippet.
    """
    n = rows.shape[-1]
    virtual = (n - 1) * q  # numpy's virtual index for 'linear', same rounding
    lo = min(max(math.floor(virtual), 0), n - 1)
    hi = lo if virtual >= n - 1 else lo + 1
    gamma = virtual - lo
    part = np.partition(rows, lo, axis=-1)
    a = part[..., lo].astype(np.float64)
    # The next order statistic is the least value above position lo: one pass over the top
    # (1 - q) share, where a second kth makes np.partition several times slower.
    b = a if hi == lo else part[..., hi:].min(axis=-1).astype(np.float64)
    diff = b - a
    return b - diff * (1.0 - gamma) if gamma >= 0.5 else a + diff * gamma


def attention_thresholds(attention: np.ndarray, quantile: float = DEFAULT_QUANTILE) -> np.ndarray:
    """Per-matrix q-quantile of attention, linear interpolation over all n^2 cells.

    attention: (..., n, n) with n >= 1. Returns float64 of shape (...). Computed in float64 so
    that the threshold compares exactly against the float64 cells `cat_scores` uses.
    """
    a = np.asarray(attention, dtype=np.float64)
    flat = a.reshape(-1, a.shape[-2] * a.shape[-1])
    return linear_quantile(flat, quantile).reshape(a.shape[:-2])


def cat_scores(attention: np.ndarray, distance: np.ndarray, quantile: float = DEFAULT_QUANTILE) -> np.ndarray:
    """CAT-scores of every attention matrix in a stack against one distance matrix.

    attention: (..., n, n) float token attention over the kept tokens (row = query), e.g.
        (n_layers, n, n) or (n_layers, n_heads, n, n). float32 stays float32: the thresholds
        are exact float64 interpolations of its cells and every comparison is made in float64,
        so the scores are those of the float64 copy, without making one.
    distance: (n, n) tree distances (hops) over the same tokens in the same order.
    quantile: q; thresholds are the q-quantile of each A and the (1 - q)-quantile of D.
    Returns float64 of shape attention.shape[:-2]: IoU in [0, 1], NaN where the union is empty
    or n == 0.
    """
    q = check_quantile(quantile)
    a = np.asarray(attention)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    d = np.asarray(distance)
    n = d.shape[0]
    if d.shape != (n, n) or a.shape[-2:] != (n, n):
        raise InputError(f"attention {a.shape} and distance {d.shape} must end in the same (n, n)")
    batch = a.shape[:-2]
    if n == 0:
        return np.full(batch, np.nan)
    return iou_scores(a.reshape(-1, n * n), near_mask(d, q), q).reshape(batch)


def near_mask(distance: np.ndarray, quantile: float) -> np.ndarray:
    """M_D: bool (1, n^2), the cells of `distance` (n, n) strictly below its (1 - q)-quantile."""
    d_flat = np.asarray(distance).reshape(1, -1).astype(np.float64)
    return d_flat < linear_quantile(d_flat, 1.0 - quantile)


def iou_scores(flat: np.ndarray, near: np.ndarray, q: float) -> np.ndarray:
    """CAT-scores (B,) float64 of attention matrices flattened to `flat` (B, n^2), float32 or
    float64, against M_D = `near` (1, n^2) from `near_mask`; q as in `cat_scores`."""
    q = check_quantile(q)
    strong = flat > linear_quantile(flat, q)[:, None]  # M_A per matrix; float64 comparison
    inter = np.count_nonzero(strong & near, axis=-1)
    union = np.count_nonzero(strong, axis=-1) + np.count_nonzero(near) - inter
    return np.where(union > 0, inter / np.maximum(union, 1), np.nan)

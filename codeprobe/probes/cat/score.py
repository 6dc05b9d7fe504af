"""The CAT-score of one snippet, for all layers (and heads) at once.

Conventions (spec "CAT-probing", step 6): over the n x n matrices of the kept tokens, diagonal
included, theta_A = q-quantile of A and theta_D = (1 - q)-quantile of D, both with numpy's
linear interpolation over the scored cells; M_A = A > theta_A and M_D = D < theta_D (strict);
s = |M_A and M_D| / |M_A or M_D| over the same cells. The score is NaN when the union is empty
(e.g. a single token), which callers report as a skipped sample.

Which cells are scored (`mask`, docs/cat.md):
- "full" (the paper's, arXiv:2210.04633, for its encoders): all n^2 cells.
- "causal" (decoders): the n(n + 1)/2 pairs (i, j) with j <= i, query i at or right of key j,
  diagonal included: the pairs a causal query can attend to. Both thresholds, M_D and the
  overlap are taken over these cells only, so the symmetric distance matrix counts once (its
  lower triangle) and the cells a decoder's attention cannot fill (A = 0 right of the
  diagonal) neither lower theta_A nor sit in M_D as pairs no attention could ever reach.
  Tokens are in source order, so j <= i is "key not after the query".
- "auto" (`CATProbe`, the pipeline): causal for a decoder, full for any other model
  (`resolve_mask`).
"""

from __future__ import annotations

import math

import numpy as np

from codeprobe.errors import InputError

DEFAULT_QUANTILE = 0.75
MASKS = ("auto", "causal", "full")
DECODER = "decoder"  # `ModelInfo.kind` of a causal model (`codeprobe.model.architecture`)


def check_quantile(quantile: float) -> float:
    """Return `quantile` as a float, or raise InputError unless 0 < quantile < 1."""
    q = float(quantile)
    if not 0.0 < q < 1.0:
        raise InputError(f"quantile must lie strictly between 0 and 1, got {quantile!r}")
    return q


def check_mask(mask: str, *, resolved: bool = False) -> str:
    """Return `mask` if it names a convention (`MASKS`; with `resolved`, "causal" or "full"),
    else raise InputError."""
    allowed = MASKS[1:] if resolved else MASKS
    if mask not in allowed:
        raise InputError(f"mask must be one of {', '.join(allowed)}, got {mask!r}")
    return mask


def resolve_mask(mask: str, kind: str) -> str:
    """The convention a model of `kind` (`ModelInfo.kind`: "encoder", "encoder (of
    encoder-decoder)", "decoder") is scored with: "auto" is "causal" for a decoder and "full"
    otherwise; "causal" and "full" are taken as given (a named switch, e.g. the full-matrix
    score of a decoder for comparison with the paper's numbers)."""
    if check_mask(mask) != "auto":
        return mask
    return "causal" if kind == DECODER else "full"


def cell_index(idx: np.ndarray, mask: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols): where the scored cells among tokens `idx` lie in a larger matrix.

    idx: (m,) ascending int indices (source order) of the kept tokens.
    Returns index arrays such that `x[..., rows, cols].reshape(*lead, -1)` gives the scored cells
    of `x` (..., N, N) in row-major order: (m, 1) and (1, m) for "full" (all m^2 cells), two
    (m (m + 1) / 2,) arrays for "causal" (the pairs idx[b] <= idx[a]).
    """
    idx = np.asarray(idx, dtype=np.int64)
    if check_mask(mask, resolved=True) == "full":
        return idx[:, None], idx[None, :]
    rows, cols = np.tril_indices(idx.size)
    return idx[rows], idx[cols]


def scored_cells(matrices: np.ndarray, mask: str) -> np.ndarray:
    """The scored cells of `matrices` (..., n, n) as (..., m): all n^2 in row-major order
    ("full", a view where numpy can make one) or the n(n + 1)/2 pairs j <= i ("causal")."""
    a = np.asarray(matrices)
    n = a.shape[-1]
    if check_mask(mask, resolved=True) == "full":
        return a.reshape(*a.shape[:-2], n * n)
    rows, cols = np.tril_indices(n)
    return a[..., rows, cols]


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


def attention_thresholds(
    attention: np.ndarray, quantile: float = DEFAULT_QUANTILE, *, mask: str = "full"
) -> np.ndarray:
    """Per-matrix q-quantile of attention, linear interpolation over the scored cells (`mask`:
    all n^2, or the causal pairs j <= i).

    attention: (..., n, n) with n >= 1. Returns float64 of shape (...). Computed in float64 so
    that the threshold compares exactly against the float64 cells `cat_scores` uses.
    """
    a = np.asarray(attention, dtype=np.float64)
    cells = scored_cells(a, mask)
    return linear_quantile(cells.reshape(-1, cells.shape[-1]), quantile).reshape(a.shape[:-2])


def cat_scores(
    attention: np.ndarray, distance: np.ndarray, quantile: float = DEFAULT_QUANTILE, *, mask: str = "full"
) -> np.ndarray:
    """CAT-scores of every attention matrix in a stack against one distance matrix.

    attention: (..., n, n) float token attention over the kept tokens (row = query), e.g.
        (n_layers, n, n) or (n_layers, n_heads, n, n). float32 stays float32: the thresholds
        are exact float64 interpolations of its cells and every comparison is made in float64,
        so the scores are those of the float64 copy, without making one.
    distance: (n, n) tree distances (hops) over the same tokens in the same order.
    quantile: q; thresholds are the q-quantile of each A and the (1 - q)-quantile of D.
    mask: the cells scored, "full" (all n^2) or "causal" (pairs j <= i); see the module doc.
    Returns float64 of shape attention.shape[:-2]: IoU in [0, 1], NaN where the union is empty
    or n == 0.
    Raises:
        InputError: shapes that do not match, a quantile outside (0, 1), an unknown mask.
    """
    q = check_quantile(quantile)
    check_mask(mask, resolved=True)
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
    cells = scored_cells(a, mask)
    return iou_scores(cells.reshape(-1, cells.shape[-1]), near_mask(scored_cells(d, mask), q), q).reshape(batch)


def near_mask(distance: np.ndarray, quantile: float) -> np.ndarray:
    """M_D: bool (1, m), the scored cells of the distances, given in any shape of m cells (e.g.
    `scored_cells` of the (n, n) matrix), strictly below their (1 - q)-quantile."""
    d_flat = np.asarray(distance).reshape(1, -1).astype(np.float64)
    return d_flat < linear_quantile(d_flat, 1.0 - quantile)


def iou_scores(flat: np.ndarray, near: np.ndarray, q: float) -> np.ndarray:
    """CAT-scores (B,) float64 of the scored cells `flat` (B, m) of attention matrices, float32
    or float64, against M_D = `near` (1, m) from `near_mask` over the same cells; q as in
    `cat_scores`."""
    q = check_quantile(q)
    strong = flat > linear_quantile(flat, q)[:, None]  # M_A per matrix; float64 comparison
    inter = np.count_nonzero(strong & near, axis=-1)
    union = np.count_nonzero(strong, axis=-1) + np.count_nonzero(near) - inter
    return np.where(union > 0, inter / np.maximum(union, 1), np.nan)

"""Per-edge scores of every attention head: does the head token's attention row rank the
dependent among its top k (Clark et al. 2019, arXiv:1906.04341; CodeSyntax, Shen et al. 2022,
arXiv:2210.14473), and how much weight does the dependent span get (Chen et al. 2024,
arXiv:2309.07311, "SAS")? Vectorised over layers, heads and edges.

The four top-k scores (`SCORES`, their order in every array):

| index | direction   | dependent | attending token (row)  | hit@k when the top k of that row holds |
|-------|-------------|-----------|------------------------|----------------------------------------|
| 0     | head->dep   | first     | head                   | dep_start                              |
| 1     | head->dep   | any       | head                   | some token of [dep_start, dep_end)     |
| 2     | head->dep   | last      | head                   | dep_end - 1                            |
| 3     | dep->head   | first     | dep_start              | head                                   |

The two SAS-style weights (`SAS_DIRECTIONS`): head->dep, the sum of the head row over the
dependent span; dep->head, the weight the dependent's first token puts on the head token.

Conventions (all documented choices, tested against `tests/oracles/heads.py`):
- Top k of a row: its tokens by descending weight, ties broken by the lower token index first
  (a stable descending sort), so the set is unique; k larger than the candidates = all of them.
- `exclude_self` (default True): the attending token is never in its own top k. CodeSyntax
  zeroes the diagonal before sorting (`preprocess_attn_*.py`); we remove it outright, so a row
  that puts little weight elsewhere cannot hit through ties with its own zeroed cell.
- `causal` (decoders): only tokens at or left of the attending token are candidates; an edge
  whose target lies to the right is *not scorable* (counted apart, never a miss). For `any`
  an edge is scorable when some dependent token is a candidate.
- SAS is the raw weight (no exclusion, no renormalisation), summed over the span, on the edges
  scorable under `any` (head->dep) or `dep->head`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codeprobe.errors import InputError
from codeprobe.probes.heads.edges import EdgeArrays

SCORES: tuple[tuple[str, str], ...] = (
    ("head->dep", "first"),
    ("head->dep", "any"),
    ("head->dep", "last"),
    ("dep->head", "first"),
)
SAS_DIRECTIONS: tuple[str, ...] = ("head->dep", "dep->head")
DIRECTIONS: tuple[str, ...] = ("head->dep", "dep->head")
DEPENDENT: tuple[str, ...] = ("first", "any", "last")
DEFAULT_KS: tuple[int, ...] = (1, 3, 10)


def score_index(direction: str, dependent: str = "first") -> int:
    """The index of (direction, dependent) in `SCORES`.

    Raises:
        InputError: an unknown direction or dependent, or dep->head with another dependent
            than "first" (that direction reads the dependent's first token's row only).
    """
    if direction not in DIRECTIONS:
        raise InputError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if dependent not in DEPENDENT:
        raise InputError(f"dependent must be one of {DEPENDENT}, got {dependent!r}")
    try:
        return SCORES.index((direction, dependent))
    except ValueError:
        raise InputError(f"{direction} is scored from the dependent's first token only, not {dependent!r}") from None


def check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """ks as a sorted tuple of distinct ints >= 1.

    Raises:
        InputError: empty, or a k < 1.
    """
    out = tuple(sorted({int(k) for k in ks}))
    if not out or out[0] < 1:
        raise InputError(f"ks must be ints >= 1, got {tuple(ks)}")
    return out


def attending_positions(edges: EdgeArrays) -> np.ndarray:
    """int64 (R,): the sorted distinct tokens whose rows the scores read (heads, dependents'
    first tokens)."""
    return np.unique(np.concatenate([edges.head, edges.dep_start]))


def excluded(attending: np.ndarray, n: int, *, causal: bool, exclude_self: bool) -> np.ndarray:
    """bool (R, n): the tokens that are no candidates in each attending token's row."""
    j = np.arange(n)[None, :]
    a = np.asarray(attending)[:, None]
    out = np.zeros((a.shape[0], n), dtype=bool)
    if exclude_self:
        out |= j == a
    if causal:
        out |= j > a
    return out


def scorable(edges: EdgeArrays, *, causal: bool, exclude_self: bool) -> np.ndarray:
    """bool (4, E): whether each edge can be scored under each of `SCORES` (its target is a
    candidate of the attending row; for `any`, some token of the span is)."""
    h, s, e = edges.head, edges.dep_start, edges.dep_end

    def visible(a, j):
        ok = np.ones(a.shape, dtype=bool)
        if exclude_self:
            ok &= j != a
        if causal:
            ok &= j <= a
        return ok

    hi = np.minimum(e, h + 1) if causal else e
    count = np.maximum(hi - s, 0)
    if exclude_self:
        count = count - ((s <= h) & (h < hi))
    return np.stack([visible(h, s), count > 0, visible(h, e - 1), visible(s, h)])


def topk_members(keyed: np.ndarray, ks: Sequence[int], excluded_mask: np.ndarray) -> np.ndarray:
    """bool (K, ..., n): for each k, the members of each row's top k.

    keyed: float (..., n) rows, -inf at excluded tokens; excluded_mask: bool, broadcastable to
    keyed (excluded tokens are never members). Descending weight, ties to the lower index: the
    k-th largest value v comes from one `np.partition` for all ks; the members are the tokens
    above v and, of those equal to v, the leftmost ones that fill the k places (a cumulative
    count only in the rows where more tokens tie at v than there are places left).
    """
    n = keyed.shape[-1]
    ks = [min(int(k), n) for k in ks]
    out = np.zeros((len(ks), *keyed.shape), dtype=bool)
    if n == 0:
        return out
    part = np.partition(-keyed, sorted(set(k - 1 for k in ks)), axis=-1)
    excluded_mask = np.broadcast_to(excluded_mask, keyed.shape)
    for i, k in enumerate(ks):
        v = -part[..., k - 1 : k]
        member = keyed >= v
        # Exact where more than k tokens reach v: ties at v (fill the places left, leftmost
        # first) or v = -inf (fewer candidates than k: excluded tokens tie there).
        over = member.sum(axis=-1) > k
        if over.any():
            x, t = keyed[over], v[over]
            greater, ties = x > t, x == t
            room = k - greater.sum(axis=-1, keepdims=True)
            member[over] = (greater | (ties & (np.cumsum(ties, axis=-1) <= room))) & ~excluded_mask[over]
        out[i] = member
    return out


def ranked_topk(keyed: np.ndarray, excluded_mask: np.ndarray, k: int) -> np.ndarray:
    """int64 (..., k): each row's top k tokens in rank order (descending weight, lower index
    first), -1 after the last candidate. The top k' of a row for k' < k is its first k'."""
    shape, n = keyed.shape[:-1], keyed.shape[-1]
    flat = keyed.reshape(-1, n)
    out = np.full((flat.shape[0], int(k)), -1, dtype=np.int64)
    if n == 0 or not flat.shape[0]:
        return out.reshape(*shape, int(k))
    members = topk_members(flat, (k,), np.broadcast_to(excluded_mask, keyed.shape).reshape(-1, n))[0]
    rows, cols = np.nonzero(members)  # row-major: each row's members by ascending index
    counts = members.sum(axis=-1)
    slot = np.arange(rows.size) - (np.cumsum(counts) - counts)[rows]
    out[rows, slot] = cols
    weight = np.where(out >= 0, np.take_along_axis(flat, np.maximum(out, 0), axis=-1), -np.inf)
    order = np.argsort(-weight, axis=-1, kind="stable")  # ties keep ascending index; padding last
    return np.take_along_axis(out, order, axis=-1).reshape(*shape, int(k))


def _first_rank(found: np.ndarray) -> np.ndarray:
    """int (..., E): the first position along the last axis where found is True, else its size."""
    return np.where(found.any(axis=-1), found.argmax(axis=-1), found.shape[-1])


@dataclass(frozen=True)
class EdgeScores:
    """The scores of one snippet's E edges under G = L*H heads (flattened layer-major).

    Attributes:
        hits: bool (4, K, G, E): top-k hit per `SCORES` index, k (the ks in order), head, edge;
            False where not scorable.
        sas: float64 (2, G, E): per `SAS_DIRECTIONS`, the weight the target gets; 0 where not
            scorable.
        scorable: bool (4, E): per `SCORES` index (SAS uses index 1 for head->dep, 3 for
            dep->head).
    """

    hits: np.ndarray
    sas: np.ndarray
    scorable: np.ndarray


def score_rows(
    rows: np.ndarray,
    attending: np.ndarray,
    edges: EdgeArrays,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    causal: bool = False,
    exclude_self: bool = True,
) -> EdgeScores:
    """Score edges from the attention rows of their attending tokens only.

    Args:
        rows: float (G, R, n): each head's rows of the tokens `attending` (int (R,), sorted,
            distinct, as `attending_positions(edges)` gives), e.g. attention[:, :, attending]
            reshaped, or rows a baseline drew for just those tokens.
        edges: the snippet's edges (checked against n by the caller).
        ks: the k of top-k (sorted, distinct: `check_ks`).
        causal, exclude_self: see the module's conventions.

    Raises:
        InputError: a weight of the rows is NaN or infinite.
    """
    rows = np.asarray(rows)
    if rows.dtype.kind != "f":
        rows = rows.astype(np.float64)
    g, r, n = rows.shape
    n_edges = len(edges)
    ok = scorable(edges, causal=causal, exclude_self=exclude_self)
    sas = np.zeros((len(SAS_DIRECTIONS), g, n_edges), dtype=np.float64)
    if n_edges == 0:
        return EdgeScores(np.zeros((len(SCORES), len(ks), g, 0), dtype=bool), sas, ok)
    excl = excluded(attending, n, causal=causal, exclude_self=exclude_self)
    if not np.isfinite(rows).all():
        raise InputError("attention has NaN or infinite weights")
    keyed = np.where(excl, -np.inf, rows)
    h, s, e = edges.head, edges.dep_start, edges.dep_end
    row_of_head = np.searchsorted(attending, h)
    row_of_dep = np.searchsorted(attending, s)
    ranked = ranked_topk(keyed, excl, ks[-1])  # (G, R, kmax)
    from_head = ranked[:, row_of_head]  # (G, E, kmax)
    ranks = np.stack(
        [
            _first_rank(from_head == s[None, :, None]),
            _first_rank((from_head >= s[None, :, None]) & (from_head < e[None, :, None])),
            _first_rank(from_head == (e - 1)[None, :, None]),
            _first_rank(ranked[:, row_of_dep] == h[None, :, None]),
        ]
    )  # (4, G, E): the best rank of a target in the top kmax, kmax = none
    hits = ranks[:, None] < np.asarray(ks)[None, :, None, None]
    hits &= ok[:, None, None, :]
    head_rows, span_row = np.unique(row_of_head, return_inverse=True)  # only head rows need spans
    mass = np.zeros((g, head_rows.size, n + 1), dtype=np.float64)
    np.cumsum(rows[:, head_rows], axis=-1, dtype=np.float64, out=mass[..., 1:])
    sas[0] = np.where(ok[1], mass[:, span_row, e] - mass[:, span_row, s], 0.0)
    sas[1] = np.where(ok[3], rows[:, row_of_dep, h], 0.0)
    return EdgeScores(hits, sas, ok)


def score_edges(
    attention: np.ndarray,
    edges: EdgeArrays,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    causal: bool = False,
    exclude_self: bool = True,
) -> EdgeScores:
    """Score a snippet's edges under every head of its token attention.

    Args:
        attention: float (L, H, n, n) token attention (rows = attending token, ~sum 1), from
            any source (a model, a random-weights model, a synthetic one).
        edges: its `EdgeArrays`.
        ks, causal, exclude_self: see `score_rows` and the module's conventions.

    Returns:
        `EdgeScores` over G = L*H heads, layer-major (head g = layer * H + head).

    Raises:
        InputError: attention not (L, H, n, n), edges outside it, NaN weights.
    """
    attention = np.asarray(attention)
    if attention.ndim != 4 or attention.shape[2] != attention.shape[3]:
        raise InputError(f"attention must be (L, H, n, n), got {attention.shape}")
    n_layers, n_heads, n, _ = attention.shape
    edges.check(n)
    attending = attending_positions(edges)
    rows = attention[:, :, attending].reshape(n_layers * n_heads, attending.size, n)
    return score_rows(rows, attending, edges, ks=check_ks(ks), causal=causal, exclude_self=exclude_self)

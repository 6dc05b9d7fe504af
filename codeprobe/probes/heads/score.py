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

How (`score_rows`): each score of an edge asks for the rank of one target in one row, the rank
being the number of candidates before it in that order; for `any` the target is the span's
best-ranked candidate, its largest weight (the leftmost of equal ones), so no other token of the
span is ranked. A hit@k is rank < k, for all ks from one rank. The ranks below max(ks) are the
only ones needed: a floor per row, at most its max(ks)-th largest candidate weight, settles most
of them at once (a target below it misses every k), and the rest are counted exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

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
_SAS_SCORES = [1, 3]  # the `SCORES` whose targets the SAS directions weigh: head->dep/any, dep->head
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
    return np.flatnonzero(np.bincount(np.concatenate([edges.head, edges.dep_start])))


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
    attending, target = np.stack([h, h, s]), np.stack([s, e - 1, h])  # first, last, dep->head
    ok = np.ones(target.shape, dtype=bool)
    if exclude_self:
        ok &= target != attending
    if causal:
        ok &= target <= attending
    hi = np.minimum(e, h + 1) if causal else e
    count = np.maximum(hi - s, 0)
    if exclude_self:
        count = count - ((s <= h) & (h < hi))
    return np.stack([ok[0], count > 0, ok[1], ok[2]])


def span_queries(
    edges: EdgeArrays, row_of_head: np.ndarray, row_of_dep: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each score of each edge as a query (attending row, span [start, end)) whose target is the
    span's best-ranked candidate; a single token for every score but head->dep/any.

    Returns:
        (row, start, end) int64 (Q,): the distinct queries, ascending by (row, start, end);
        int64 (4, E): the query of each edge under each of `SCORES` (a one-token dependent
        asks the same under all three head->dep scores).
    """
    h, s, e = edges.head, edges.dep_start, edges.dep_end
    one = np.ones_like(s)
    row = np.concatenate([row_of_head, row_of_head, row_of_head, row_of_dep])
    start = np.concatenate([s, s, e - 1, h])
    length = np.concatenate([one, e - s, one, one])
    code, query = np.unique((row * n + start) * (n + 1) + length, return_inverse=True)
    at, length = np.divmod(code, n + 1)
    row, start = np.divmod(at, n)
    return row, start, start + length, query.reshape(len(SCORES), len(edges))


def span_cells(start: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The indices of consecutive runs, run after run: int64 (sum(length),) start[i],
    start[i] + 1, ... for each i, and int64 (len(start),) where each run begins among them."""
    first = np.cumsum(length) - length
    return np.arange(int(length.sum())) + np.repeat(start - first, length), first


def _count(mask: np.ndarray) -> np.ndarray:
    """The True cells of each row of a bool (..., n), summed as bytes: a fraction of the cost of
    bool's own sum."""
    return mask.view(np.uint8).sum(axis=-1, dtype=np.int64)


def _count_planes(mask: np.ndarray) -> np.ndarray:
    """The True cells along the first axis of a bool (k, ...), summed plane by plane (whole
    planes at a time, not a short axis at a time)."""
    return mask.view(np.uint8).sum(axis=0, dtype=np.int64)


def _nonnegative_finite(x: np.ndarray) -> bool:
    """Whether all of x are finite and none is negative or -0.0, in one max over their bits
    (below those of +inf then): the check attention weights pass, cheaper than isfinite."""
    if x.itemsize not in (2, 4, 8):
        return False
    bits = f"u{x.itemsize}"
    return bool(x.view(bits).max(initial=0) < np.array(np.inf, x.dtype).view(bits))


def _selectable(x: np.ndarray, by_bits: bool) -> np.ndarray:
    """x, or where its weights are non-negative (-inf aside) its bits as signed ints, which
    order as the weights do and are selected faster (`np.partition`); view the result back."""
    return x.view(f"i{x.itemsize}") if by_bits else x


GROUPS_PER_K = 4  # a long row is folded into about this many groups per kmax before the selection


def best_ranks(
    rows: np.ndarray,
    excl: np.ndarray,
    row: np.ndarray,
    start: np.ndarray,
    best: np.ndarray,
    kmax: int,
    *,
    own: np.ndarray | None = None,
    by_bits: bool = False,
) -> np.ndarray:
    """int64 (G, Q): the rank of each query's target in its row, capped at kmax; kmax where
    its span has no candidate.

    rows: float (G, R, n), finite (by_bits: none negative or -0.0 either); excl: bool (R, n)
    the tokens that are no candidates; own: int (R,), each row's own token where that is its
    only non-candidate (exclude_self without causal), else None; row, start: int (Q,) each
    query's row and first span token; best: (G, Q) the largest candidate weight of its span
    (-inf: none). The span's best-ranked candidate is the leftmost one of weight `best`, so its
    rank is the number of candidates of greater weight plus those of equal weight left of
    `start` (none inside the span comes before it).
    """
    n = rows.shape[-1]
    per_group = n // (GROUPS_PER_K * kmax)
    # Non-candidates read -inf: in a copy where the rows are short or have more of them; in
    # long rows, a row's own token is left in place and allowed for (one more group maximum
    # below the floor, -inf where a row is counted).
    keyed = rows
    if per_group < 2 or (own is None and excl.any()):
        keyed = rows.copy()
        keyed[:, excl] = -np.inf
        own = None
    spare = int(own is not None)
    if per_group < 2:
        # Short rows: their cap largest weights settle almost every rank. A target below the
        # cap-th largest ranks cap or later; one above it, with no other token of its weight
        # among them, ranks by the count of larger ones.
        cap = min(int(kmax), n)
        part = np.partition(_selectable(keyed, by_bits), n - cap, axis=-1)[..., n - cap :].view(keyed.dtype)
        top = np.ascontiguousarray(np.moveaxis(part, -1, 0))[:, :, row]  # (cap, G, Q); top[0] the cap-th largest
        clear = (best > top[0]) & (_count_planes(top == best) == 1)
        rank = np.where(clear, _count_planes(top > best), kmax)
        todo = (best == top[0]) & (best > -np.inf) | (best > top[0]) & ~clear
    else:
        # Long rows: token j joins group j mod w (the last n - per_group * w left out), so the
        # kmax-th largest of the w group maxima is at most the row's kmax-th largest weight, at a
        # fraction of a selection over the row; a target below it ranks kmax or later.
        w = n // per_group
        groups = np.maximum(keyed[..., :w], keyed[..., w : 2 * w])  # slice by slice: w-long inner loops
        for i in range(2, per_group):
            np.maximum(groups, keyed[..., i * w : (i + 1) * w], out=groups)
        floor = np.partition(_selectable(groups, by_bits), w - kmax - spare, axis=-1)[:, row, w - kmax - spare]
        floor = floor.view(groups.dtype)
        rank = np.full(best.shape, kmax)
        todo = (best >= floor) & (best > -np.inf)
    gi, qi = np.nonzero(todo)
    if gi.size:  # count over the whole row: the larger weights, then equal ones left of start
        x = keyed[gi, row[qi]]
        if own is not None:
            x[np.arange(gi.size), own[row[qi]]] = -np.inf
        v = best[gi, qi, None]
        rank[gi, qi] = _count(x > v)
        tied = np.flatnonzero(_count(x == v) > 1)  # rare: another token of the target's weight
        rank[gi[tied], qi[tied]] += _count((x[tied] == v[tied]) & (np.arange(n) < start[qi[tied], None]))
    return np.minimum(rank, kmax)


@dataclass(frozen=True)
class EdgeScores:
    """The scores of one snippet's E edges under G = L*H heads (flattened layer-major).

    Attributes:
        rank: int64 (4, G, E): per `SCORES` index, head and edge, the rank of the target in the
            attending token's row (0: its most attended candidate), capped at max(ks); max(ks)
            where not scorable.
        ks: the k of top-k, sorted.
        sas: float64 (2, G, E): per `SAS_DIRECTIONS`, the weight the target gets; 0 where not
            scorable.
        scorable: bool (4, E): per `SCORES` index (SAS uses index 1 for head->dep, 3 for
            dep->head).
    """

    rank: np.ndarray
    ks: tuple[int, ...]
    sas: np.ndarray
    scorable: np.ndarray

    @cached_property
    def hits(self) -> np.ndarray:
        """bool (4, K, G, E): top-k hit per `SCORES` index, k (the ks in order), head, edge;
        False where not scorable."""
        return self.rank[:, None] < np.asarray(self.ks)[:, None, None]


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
    g, _, n = rows.shape
    if not len(edges):
        return EdgeScores(
            np.zeros((len(SCORES), g, 0), dtype=np.int64),
            tuple(ks),
            np.zeros((len(SAS_DIRECTIONS), g, 0)),
            np.zeros((len(SCORES), 0), dtype=bool),
        )
    by_bits = _nonnegative_finite(rows)
    if not by_bits and not np.isfinite(rows).all():
        raise InputError("attention has NaN or infinite weights")
    excl = excluded(attending, n, causal=causal, exclude_self=exclude_self)
    row, start, end, query = span_queries(
        edges, np.searchsorted(attending, edges.head), np.searchsorted(attending, edges.dep_start), n
    )
    # Per query: the raw weight its span gets, its largest candidate weight and whether it has a
    # candidate at all (is scorable). Most spans are one token, read directly; the longer ones
    # are gathered and reduced run by run.
    weights = rows[:, row, start]  # (G, Q)
    mass = weights.astype(np.float64)
    seen = ~excl[row, start]
    best = np.where(seen, weights, -np.inf)
    long = np.flatnonzero(end - start > 1)
    if long.size:
        cells, first = span_cells(row[long] * n + start[long], (end - start)[long])
        cell_row, cell_token = np.divmod(cells, n)
        weights, visible = rows[:, cell_row, cell_token], ~excl[cell_row, cell_token]
        mass[:, long] = np.add.reduceat(weights, first, axis=-1, dtype=np.float64)
        best[:, long] = np.maximum.reduceat(np.where(visible, weights, -np.inf), first, axis=-1)
        seen[long] = np.logical_or.reduceat(visible, first)
    ok = seen[query]  # (4, E)
    own = attending if exclude_self and not causal else None
    rank = best_ranks(rows, excl, row, start, best, ks[-1], own=own, by_bits=by_bits)
    sas = np.where(ok[_SAS_SCORES, None, :], np.moveaxis(mass[:, query[_SAS_SCORES]], 1, 0), 0.0)
    return EdgeScores(np.moveaxis(rank[:, query], 1, 0), tuple(ks), sas, ok)


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

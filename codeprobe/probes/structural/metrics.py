"""The structural probe's metrics (Hewitt & Manning, "A Structural Probe for Finding Syntax in
Word Representations", NAACL 2019, N19-1419), scored against a gold token tree
(`codeprobe.syntax.token_tree`), and the linear baseline. Pure functions on numpy arrays.

Distance probe (a predicted distance per token pair, shape (n, n)):
- **UUAS**: the minimum spanning tree of the predicted distances, against the gold tree's
  undirected edges: the share of gold edges it recovers. Per snippet `uuas_counts` gives
  (recovered, n - 1); the corpus figure sums both over snippets before dividing, as the
  reference's reporter does (a micro average: long snippets weigh more).
- **DSpr**: per snippet, the Spearman correlation of each token's predicted and gold distances
  to the other tokens, averaged over its tokens; then `length_macro_average`.

Depth probe (a predicted depth per token, shape (n,)):
- **NSpr**: per snippet, the Spearman correlation of predicted and gold depths; then
  `length_macro_average`.
- **Root accuracy**: whether the gold root is the shallowest predicted token; the corpus figure
  is the share of snippets where it is.

Conventions (each a choice; the reference's is named where it differs):
- The spanning tree is Prim's from token 0 over the upper triangle (i < j) of the matrix, which
  is symmetric up to rounding. Ties: the next token is the lowest-numbered of the nearest, and
  it hangs from the token added to the tree first among those at that distance. Distinct
  distances have one minimum spanning tree, which any algorithm finds; ties only arise from
  degenerate predictions (a gold or linear distance matrix has one minimum spanning tree, the
  tree itself, ties and all: its distance-1 pairs are its edges).
- DSpr correlates each token's distances to the *other* tokens: its distance to itself is 0 in
  both matrices, a pair that always agrees. The reference (`reporter.py`) correlates whole rows,
  the token itself included: `include_self=True`. A gold row without two different distances
  (a token adjacent to all others) has no ranking to recover and is left out of the token
  average; a predicted row or depth vector without two different values, where the gold has
  them, counts as correlation 0 (scipy's `spearmanr` says NaN): a prediction that ranks
  nothing scores nothing.
- Root accuracy needs the gold root's predicted depth to be strictly the smallest: a tie is a
  miss. (`np.argmin` would resolve it towards token 0, which is always the gold root under the
  first-token head rule, and credit a constant prediction.)
- Punctuation counts: the reference leaves punctuation out of every metric, but a code token
  such as `(` or `{` is syntax, a node of the token tree like any other.
- Macro average over lengths: the reference averages within each sentence length, then over
  lengths 5-50 (`HEWITT_MANNING_LENGTHS`). Functions are longer and their lengths spread thin,
  so the lengths are chosen from the data (`qualifying_lengths`): every length with at least
  `min_snippets` snippets (`DEFAULT_MIN_SNIPPETS` = 2), within an optional range.

The linear baseline (`linear_distance`, `linear_baseline`) is the tree of consecutive tokens,
distance |i - j|: its UUAS is the share of gold edges between neighbours. Structural probes are
biased towards tokens that sit close together (Diego-Simon et al. 2025), so it stands beside
every probe's score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from codeprobe.errors import InputError

# The reference's sentence lengths for DSpr and NSpr (inclusive).
HEWITT_MANNING_LENGTHS = (5, 50)

# A length's mean must rest on more than one snippet: on the main job's test split (139 stdlib
# functions, 7-412 tokens over 72 lengths) this keeps 38 lengths and 105 snippets, and leaves
# out mostly the long tail, where each length has one function (docs/token-tree.md).
DEFAULT_MIN_SNIPPETS = 2


@dataclass(frozen=True)
class DistanceScores:
    """A distance prediction's scores on one snippet.

    Attributes:
        uuas_correct: gold edges recovered by the predicted spanning tree.
        uuas_total: gold edges, n - 1.
        dspr: the snippet's DSpr (mean over its tokens of a Spearman correlation, in [-1, 1]).
    """

    uuas_correct: int
    uuas_total: int
    dspr: float

    @property
    def uuas(self) -> float:
        return self.uuas_correct / self.uuas_total


@dataclass(frozen=True)
class DepthScores:
    """A depth prediction's scores on one snippet.

    Attributes:
        nspr: Spearman correlation of predicted and gold depths, in [-1, 1].
        root_correct: the gold root is strictly the shallowest predicted token.
    """

    nspr: float
    root_correct: bool


@dataclass(frozen=True)
class LengthAverage:
    """A per-snippet metric macro-averaged over snippet lengths.

    Attributes:
        value: the unweighted mean of `means` (NaN when no snippet has a length averaged over).
        lengths: int64 (k,), the lengths averaged over, increasing (arrays read-only).
        means: float64 (k,), the metric's mean over the snippets of each length.
        counts: int64 (k,), snippets of each length.
    """

    value: float
    lengths: np.ndarray
    means: np.ndarray
    counts: np.ndarray


def spanning_tree(distances: np.ndarray) -> np.ndarray:
    """The minimum spanning tree of predicted distances, as heads rooted at token 0 (Prim's
    algorithm over the upper triangle, ties as in the module docstring).

    Args:
        distances: (n, n) finite numbers, e.g. squared L2 distances of probed vectors.

    Returns:
        int64 (n,): each token's neighbour towards token 0 in the tree, -1 at token 0.

    Raises:
        InputError: not a square matrix, or not finite.
    """
    d = _square(distances, "distances")
    upper = np.triu(d, 1)
    d = upper + upper.T
    n = d.shape[0]
    heads = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return heads
    in_tree = np.zeros(n, dtype=bool)
    in_tree[0] = True
    best = d[0].copy()  # each token's distance to the tree so far
    link = np.zeros(n, dtype=np.int64)  # the tree token it is that close to
    best[0] = np.inf
    for _ in range(n - 1):
        v = int(np.argmin(best))
        heads[v] = link[v]
        in_tree[v] = True
        best[v] = np.inf
        closer = (d[v] < best) & ~in_tree  # strictly: the earlier tree token keeps a tie
        best[closer] = d[v][closer]
        link[closer] = v
    return heads


def uuas_counts(predicted: np.ndarray, gold_heads: np.ndarray) -> tuple[int, int]:
    """(gold edges recovered, gold edges) for one snippet: UUAS's numerator and denominator.

    Args:
        predicted: (n, n) predicted distances.
        gold_heads: int (n,), the gold tree's heads (-1 at its root), e.g. `TokenTree.heads`.

    Raises:
        InputError: shapes that disagree, fewer than 2 tokens, or heads that are not a tree.
    """
    gold = _heads(gold_heads, min_tokens=2)
    d = _square(predicted, "predicted")
    if d.shape[0] != gold.size:
        raise InputError(f"predicted distances are {d.shape} for {gold.size} gold heads")
    recovered = np.intersect1d(_edge_keys(spanning_tree(d)), _edge_keys(gold)).size
    return int(recovered), gold.size - 1


def uuas(predicted: np.ndarray, gold_heads: np.ndarray) -> float:
    """One snippet's UUAS: the share of gold edges in the predicted distances' minimum spanning
    tree, in [0, 1] (see `uuas_counts`; a corpus sums the counts before dividing)."""
    correct, total = uuas_counts(predicted, gold_heads)
    return correct / total


def dspr(predicted: np.ndarray, gold: np.ndarray, *, include_self: bool = False) -> float:
    """One snippet's DSpr: for each token, the Spearman correlation of its predicted and gold
    distances to the other tokens, averaged over the tokens (rows as in the module docstring).

    Args:
        predicted: (n, n) predicted distances.
        gold: (n, n) gold distances, e.g. `TokenTree.distance`.
        include_self: correlate whole rows, each token's distance to itself included, as the
            reference's reporter does.

    Returns:
        The mean correlation, in [-1, 1].

    Raises:
        InputError: shapes that differ, values that are not finite, fewer than 3 tokens (2
            with `include_self`: a row needs two distances), or no gold row with two different
            distances.
    """
    p = _square(predicted, "predicted")
    g = _square(gold, "gold")
    n = p.shape[0]
    if g.shape != p.shape:
        raise InputError(f"predicted distances are {p.shape}, gold {g.shape}")
    if n < (2 if include_self else 3):
        raise InputError(f"DSpr needs two distances per token: {n} tokens")
    if not include_self:
        off = ~np.eye(n, dtype=bool)
        p, g = p[off].reshape(n, n - 1), g[off].reshape(n, n - 1)
    rho = _spearman_rows(p, g)
    if np.isnan(rho).all():
        raise InputError("no gold row has two different distances")
    return float(np.nanmean(rho))


def nspr(predicted_depth: np.ndarray, gold_depth: np.ndarray) -> float:
    """One snippet's NSpr: the Spearman correlation of predicted and gold depths, in [-1, 1]
    (constant predictions: 0).

    Raises:
        InputError: shapes that differ or are not (n,) with n >= 2, values that are not finite,
            or gold depths that are all equal.
    """
    p, g = _vector(predicted_depth, "predicted_depth"), _vector(gold_depth, "gold_depth")
    if p.shape != g.shape or p.size < 2:
        raise InputError(f"depths must be two (n,) vectors with n >= 2, got {p.shape} and {g.shape}")
    rho = _spearman_rows(p[None], g[None])[0]
    if np.isnan(rho):
        raise InputError("gold depths are all equal")
    return float(rho)


def root_accuracy(predicted_depth: np.ndarray, gold_heads: np.ndarray) -> bool:
    """Whether the gold root is strictly the shallowest token by predicted depth (a tie is a
    miss).

    Raises:
        InputError: shapes that differ, values that are not finite, or heads that are not a tree.
    """
    p = _vector(predicted_depth, "predicted_depth")
    gold = _heads(gold_heads, min_tokens=1)
    if p.shape != gold.shape:
        raise InputError(f"{p.size} predicted depths for {gold.size} gold heads")
    root = int(np.flatnonzero(gold < 0)[0])
    return bool((np.delete(p, root) > p[root]).all())


def distance_scores(predicted: np.ndarray, gold_heads: np.ndarray, gold_distance: np.ndarray) -> DistanceScores:
    """UUAS counts and DSpr of one snippet's predicted distances (errors as theirs)."""
    correct, total = uuas_counts(predicted, gold_heads)
    return DistanceScores(correct, total, dspr(predicted, gold_distance))


def depth_scores(predicted_depth: np.ndarray, gold_heads: np.ndarray, gold_depth: np.ndarray) -> DepthScores:
    """NSpr and root accuracy of one snippet's predicted depths (errors as theirs)."""
    return DepthScores(nspr(predicted_depth, gold_depth), root_accuracy(predicted_depth, gold_heads))


def linear_distance(n: int) -> np.ndarray:
    """int64 (n, n): |i - j|, the path lengths of the tree of consecutive tokens."""
    i = np.arange(n, dtype=np.int64)
    return np.abs(i[:, None] - i[None, :])


def linear_baseline(gold_heads: np.ndarray, gold_distance: np.ndarray) -> DistanceScores:
    """UUAS counts and DSpr of the linear baseline (distance |i - j|) on one snippet. Its
    spanning tree is the chain of consecutive tokens, so UUAS counts the gold edges between
    neighbours.

    Raises:
        InputError: as `uuas_counts` and `dspr`.
    """
    gold = _heads(gold_heads, min_tokens=2)
    dependent = np.arange(gold.size)
    neighbours = int((np.abs(gold - dependent)[gold >= 0] == 1).sum())
    return DistanceScores(neighbours, gold.size - 1, dspr(linear_distance(gold.size), gold_distance))


def corpus_uuas(correct: np.ndarray, total: np.ndarray) -> float:
    """The corpus UUAS: recovered gold edges over all gold edges, summed over snippets (the
    reference's micro average).

    Raises:
        InputError: shapes that differ, or no gold edge at all.
    """
    c, t = np.asarray(correct, dtype=np.int64), np.asarray(total, dtype=np.int64)
    if c.shape != t.shape or t.sum() <= 0:
        raise InputError("UUAS counts must have one shape and at least one gold edge")
    return float(c.sum() / t.sum())


def qualifying_lengths(
    lengths: np.ndarray, *, min_snippets: int = DEFAULT_MIN_SNIPPETS, length_range: tuple[int, int] | None = None
) -> np.ndarray:
    """The snippet lengths a macro average runs over, chosen from the data: every length with
    at least `min_snippets` snippets, within `length_range` (inclusive; None: any).
    `HEWITT_MANNING_LENGTHS` with `min_snippets=1` is the reference's choice.

    Args:
        lengths: int (m,), each snippet's number of tokens.

    Returns:
        int64 (k,), increasing.

    Raises:
        InputError: `min_snippets` below 1.
    """
    if min_snippets < 1:
        raise InputError(f"min_snippets must be at least 1, not {min_snippets}")
    values, counts = np.unique(np.asarray(lengths, dtype=np.int64), return_counts=True)
    keep = counts >= min_snippets
    if length_range is not None:
        keep &= (values >= length_range[0]) & (values <= length_range[1])
    return values[keep]


def length_macro_average(values: np.ndarray, lengths: np.ndarray, over: np.ndarray) -> LengthAverage:
    """The mean of a per-snippet metric within each snippet length, then the unweighted mean over
    the lengths in `over` that some snippet has (as the reference skips lengths without a
    sentence). Choose `over` once on the data (`qualifying_lengths`) and keep it for every
    resample, so a bootstrap compares like with like.

    Args:
        values: float (m,), the metric per snippet (DSpr or NSpr).
        lengths: int (m,), each snippet's number of tokens.
        over: int (k,), the lengths to average over.

    Raises:
        InputError: shapes that differ or values that are not finite.
    """
    v = _vector(values, "values")
    length = np.asarray(lengths, dtype=np.int64)
    if length.shape != v.shape:
        raise InputError(f"{v.size} values for {length.size} lengths")
    keep = np.isin(length, np.asarray(over, dtype=np.int64))
    used, group, counts = np.unique(length[keep], return_inverse=True, return_counts=True)
    means = np.bincount(group.ravel(), weights=v[keep], minlength=used.size) / np.maximum(counts, 1)
    value = float(means.mean()) if used.size else float("nan")
    arrays = (used.astype(np.int64), means, counts.astype(np.int64))
    for a in arrays:
        a.setflags(write=False)
    return LengthAverage(value, *arrays)


def _spearman_rows(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """float64 (r,): Spearman's rho of each row pair (average ranks for ties): NaN where the
    gold row is constant, 0 where only the predicted row is."""
    rp = rankdata(p, axis=1)
    rg = rankdata(g, axis=1)
    rp -= rp.mean(axis=1, keepdims=True)
    rg -= rg.mean(axis=1, keepdims=True)
    norm = np.sqrt((rp * rp).sum(axis=1) * (rg * rg).sum(axis=1))
    rho = np.divide((rp * rg).sum(axis=1), norm, out=np.zeros(p.shape[0]), where=norm > 0)
    rho[np.ptp(g, axis=1) == 0] = np.nan
    return rho


def _edge_keys(heads: np.ndarray) -> np.ndarray:
    """int64 (n - 1,): each undirected edge {t, heads[t]} as min * n + max."""
    n = heads.size
    dependent = np.flatnonzero(heads >= 0)
    a, b = heads[dependent], dependent
    return np.minimum(a, b) * n + np.maximum(a, b)


def _square(a: np.ndarray, name: str) -> np.ndarray:
    out = np.asarray(a, dtype=np.float64)
    if out.ndim != 2 or out.shape[0] != out.shape[1]:
        raise InputError(f"{name} must be an (n, n) matrix, got shape {out.shape}")
    if not np.isfinite(out).all():
        raise InputError(f"{name} must be finite")
    return out


def _vector(a: np.ndarray, name: str) -> np.ndarray:
    out = np.asarray(a, dtype=np.float64)
    if out.ndim != 1:
        raise InputError(f"{name} must be (n,), got shape {out.shape}")
    if not np.isfinite(out).all():
        raise InputError(f"{name} must be finite")
    return out


def _heads(heads: np.ndarray, *, min_tokens: int) -> np.ndarray:
    """Checked heads: (n,) integers, n >= min_tokens, one root (-1), the others in range, no
    cycle (every token reaches the root)."""
    h = np.asarray(heads)
    if h.ndim != 1 or not np.issubdtype(h.dtype, np.integer):
        raise InputError(f"gold heads must be (n,) integers, got {h.dtype} {h.shape}")
    h = h.astype(np.int64)
    n = h.size
    if n < min_tokens:
        raise InputError(f"{n} tokens: at least {min_tokens} needed")
    if (h < -1).any() or (h >= n).any() or (h == -1).sum() != 1:
        raise InputError("gold heads must hold one root (-1) and token indices")
    # Climb every token at once by pointer doubling: after log2(n) + 1 rounds each has reached
    # the root, unless it sits on a cycle.
    up = np.where(h < 0, np.arange(n), h)
    for _ in range(int(np.ceil(np.log2(max(n, 2)))) + 1):
        up = up[up]
    if (h[up] != -1).any():
        raise InputError("gold heads must form a tree: a cycle")
    return h

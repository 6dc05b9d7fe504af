"""Per-snippet scores of a structural probe's predictions (or of the linear baseline) against the
gold token trees, with the corpus figures of `metrics` and bootstrap intervals from
`codeprobe.uncertainty`: the snippets are the unit of resampling, so every array here has one
entry per snippet, in input order.

- `DistanceEvaluation`: UUAS counts (against the token tree's edges, whatever the target) and
  DSpr (against the probe's target distances: the token tree's path lengths, or the AST distance
  with `target="ast"`); a snippet without a ranking to recover (2 tokens, or all gold distances
  equal) has no DSpr (NaN, left out of its means).
- `DepthEvaluation`: NSpr and root accuracy (against the token-tree depths).

`interval(metric)` is the mean over snippets with its percentile interval (`mean_ci`),
`difference(other, metric)` the paired difference with another evaluation of the same snippets
(`paired_difference`: a probe against the linear baseline, a layer against another). The
headline figures are `uuas` (corpus micro average, the reference's) and the length macro
averages `dspr_by_length` and `nspr_by_length` (lengths chosen from the data, see
`metrics.qualifying_lengths`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from codeprobe.errors import InputError
from codeprobe.probes.structural.data import gold_distance
from codeprobe.probes.structural.metrics import (
    DEFAULT_MIN_SNIPPETS,
    LengthAverage,
    corpus_uuas,
    dspr,
    length_macro_average,
    linear_distance,
    nspr,
    qualifying_lengths,
    root_accuracy,
    uuas_counts,
)
from codeprobe.syntax import TokenTree
from codeprobe.uncertainty import Interval, mean_ci, paired_difference


@dataclass(frozen=True)
class DistanceEvaluation:
    """A distance prediction's scores on m snippets (arrays read-only).

    Attributes:
        lengths: int64 (m,), tokens per snippet.
        uuas_correct: int64 (m,), gold edges in the predicted minimum spanning tree.
        uuas_total: int64 (m,), gold edges (n - 1).
        dspr: float64 (m,), each snippet's DSpr (NaN where it is undefined: 2 tokens, or gold
            distances all equal, as the AST's between the 3 tokens of `a = b`).
        target: the gold distances DSpr compares with ("token_tree" or "ast").
    """

    lengths: np.ndarray
    uuas_correct: np.ndarray
    uuas_total: np.ndarray
    dspr: np.ndarray
    target: str

    @classmethod
    def of(cls, predicted: Sequence[np.ndarray], trees: Sequence[TokenTree], target: str) -> DistanceEvaluation:
        """Scores of predicted distances (n, n) per snippet against `trees` (errors as
        `distance_evaluations`)."""
        return distance_evaluations((np.asarray(p)[None] for p in predicted), trees, target)[0]

    @classmethod
    def linear(cls, trees: Sequence[TokenTree], target: str = "token_tree") -> DistanceEvaluation:
        """The linear baseline's scores (distance |i - j|; Diego-Simon et al. 2025 found
        structural probes biased towards tokens that sit close together)."""
        return cls.of([linear_distance(len(t)) for t in trees], trees, target)

    @property
    def uuas(self) -> float:
        """Corpus UUAS: recovered gold edges over all gold edges (the reference's micro average)."""
        return corpus_uuas(self.uuas_correct, self.uuas_total)

    @property
    def uuas_per_snippet(self) -> np.ndarray:
        """float64 (m,): each snippet's UUAS."""
        return self.uuas_correct / self.uuas_total

    def dspr_by_length(
        self, over: np.ndarray | None = None, *, min_snippets: int = DEFAULT_MIN_SNIPPETS
    ) -> LengthAverage:
        """DSpr macro-averaged over snippet lengths: `over`, or else every length with at least
        `min_snippets` snippets that have a DSpr (`metrics.qualifying_lengths`)."""
        return _by_length(self.dspr, self.lengths, over, min_snippets)

    def interval(self, metric: str = "uuas", *, random_state: int = 0) -> Interval:
        """Mean over snippets of "uuas" (per-snippet UUAS, a macro average) or "dspr", with its
        95% bootstrap interval (`codeprobe.uncertainty.mean_ci`)."""
        return mean_ci(self._values(metric), random_state=random_state)

    def difference(self, other: DistanceEvaluation, metric: str = "uuas", *, random_state: int = 0) -> Interval:
        """Mean over snippets of this minus `other` (the same snippets scored another way), with
        its paired 95% bootstrap interval (`codeprobe.uncertainty.paired_difference`).

        Raises:
            InputError: `other` scores other snippets (lengths differ).
        """
        _check_same_snippets(self.lengths, other.lengths)
        return paired_difference(self._values(metric), other._values(metric), random_state=random_state)

    def _values(self, metric: str) -> np.ndarray:
        if metric == "uuas":
            return self.uuas_per_snippet
        if metric == "dspr":
            return self.dspr
        raise InputError(f"a distance probe's metrics are 'uuas' and 'dspr', not {metric!r}")


@dataclass(frozen=True)
class DepthEvaluation:
    """A depth prediction's scores on m snippets (arrays read-only).

    Attributes:
        lengths: int64 (m,), tokens per snippet.
        nspr: float64 (m,), each snippet's NSpr.
        root_correct: bool (m,), the gold root is strictly the shallowest predicted token.
    """

    lengths: np.ndarray
    nspr: np.ndarray
    root_correct: np.ndarray

    @classmethod
    def of(cls, predicted: Sequence[np.ndarray], trees: Sequence[TokenTree]) -> DepthEvaluation:
        """Scores of predicted depths (n,) per snippet against `trees` (errors as
        `depth_evaluations`)."""
        return depth_evaluations((np.asarray(p)[None] for p in predicted), trees)[0]

    @classmethod
    def linear(cls, trees: Sequence[TokenTree]) -> DepthEvaluation:
        """The linear baseline's scores: depth i, the depth of token i in the tree of
        consecutive tokens."""
        return cls.of([np.arange(len(t), dtype=np.float64) for t in trees], trees)

    @property
    def root_accuracy(self) -> float:
        """Share of snippets whose gold root is the shallowest prediction."""
        return float(self.root_correct.mean())

    def nspr_by_length(
        self, over: np.ndarray | None = None, *, min_snippets: int = DEFAULT_MIN_SNIPPETS
    ) -> LengthAverage:
        """NSpr macro-averaged over snippet lengths (see `DistanceEvaluation.dspr_by_length`)."""
        return _by_length(self.nspr, self.lengths, over, min_snippets)

    def interval(self, metric: str = "nspr", *, random_state: int = 0) -> Interval:
        """Mean over snippets of "nspr" or "root" (root accuracy), with its 95% bootstrap
        interval."""
        return mean_ci(self._values(metric), random_state=random_state)

    def difference(self, other: DepthEvaluation, metric: str = "nspr", *, random_state: int = 0) -> Interval:
        """Paired difference of this and `other` on the same snippets (see
        `DistanceEvaluation.difference`)."""
        _check_same_snippets(self.lengths, other.lengths)
        return paired_difference(self._values(metric), other._values(metric), random_state=random_state)

    def _values(self, metric: str) -> np.ndarray:
        if metric == "nspr":
            return self.nspr
        if metric == "root":
            return self.root_correct.astype(np.float64)
        raise InputError(f"a depth probe's metrics are 'nspr' and 'root', not {metric!r}")


def distance_evaluations(
    predicted: Iterable[np.ndarray], trees: Sequence[TokenTree], target: str
) -> tuple[DistanceEvaluation, ...]:
    """Scores of S probes' distances, snippet by snippet: each snippet's predictions are scored
    as they come and can then be dropped (a long snippet's (S, n, n) is large).

    Args:
        predicted: per snippet, float (S, n, n): S probes' predicted distances.
        trees: the gold trees, one per snippet.
        target: the distances DSpr compares with ("token_tree" or "ast").

    Returns:
        One evaluation per probe.

    Raises:
        InputError: a number of predictions other than of trees, numbers of probes that differ
            between snippets, or shapes or values the metrics reject.
    """

    def rows(p: np.ndarray, tree: TokenTree) -> list[tuple[float, float, float]]:
        gold = gold_distance(tree, target)
        ranked = _has_ranking(gold)
        return [(*uuas_counts(q, tree.heads), dspr(q, gold) if ranked else np.nan) for q in p]

    table = _scored(predicted, trees, rows)
    lengths = _lengths(trees)
    return tuple(
        DistanceEvaluation(
            *_frozen(lengths.copy(), *(table[:, s, c].astype(np.int64) for c in (0, 1)), table[:, s, 2].copy()), target
        )
        for s in range(table.shape[1])
    )


def depth_evaluations(predicted: Iterable[np.ndarray], trees: Sequence[TokenTree]) -> tuple[DepthEvaluation, ...]:
    """Scores of S probes' depths, snippet by snippet.

    Args:
        predicted: per snippet, float (S, n): S probes' predicted depths.
        trees: the gold trees, one per snippet.

    Returns:
        One evaluation per probe.

    Raises:
        InputError: as `distance_evaluations`.
    """

    def rows(p: np.ndarray, tree: TokenTree) -> list[tuple[float, float]]:
        return [(nspr(q, tree.depth), root_accuracy(q, tree.heads)) for q in p]

    table = _scored(predicted, trees, rows)
    lengths = _lengths(trees)
    return tuple(
        DepthEvaluation(*_frozen(lengths.copy(), table[:, s, 0].copy(), table[:, s, 1].astype(bool)))
        for s in range(table.shape[1])
    )


def _scored(predicted: Iterable[np.ndarray], trees: Sequence[TokenTree], rows) -> np.ndarray:
    """float64 (m, S, c): `rows(p, tree)`, c scores for each of the S probes, per snippet."""
    table: list[list] = []
    for p in predicted:
        if len(table) == len(trees):
            raise InputError(f"more predictions than the {len(trees)} gold trees")
        p = np.asarray(p)
        if table and p.shape[0] != len(table[0]):
            raise InputError(
                f"snippet {len(table)} has predictions of {p.shape[0]} probes, snippet 0 of {len(table[0])}"
            )
        table.append(rows(p, trees[len(table)]))
    if len(table) != len(trees):
        raise InputError(f"{len(table)} predictions for {len(trees)} gold trees")
    if not table:
        raise InputError("no snippet to score")
    return np.asarray(table, dtype=np.float64)


def _has_ranking(gold: np.ndarray) -> bool:
    """Whether DSpr is defined: some token's gold distances to the others are not all equal (never
    with 2 tokens; with 3 or more, always in a token tree, but not always in an AST, where the
    leaves of one node are all 2 apart)."""
    n = gold.shape[0]
    if n < 3:
        return False
    others = gold[~np.eye(n, dtype=bool)].reshape(n, n - 1)
    return bool((others.max(axis=1) > others.min(axis=1)).any())


def _lengths(trees: Sequence[TokenTree]) -> np.ndarray:
    return np.fromiter((len(t) for t in trees), dtype=np.int64, count=len(trees))


def _frozen(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for a in arrays:
        a.setflags(write=False)
    return arrays


def _by_length(values: np.ndarray, lengths: np.ndarray, over: np.ndarray | None, min_snippets: int) -> LengthAverage:
    scored = np.isfinite(values)
    if over is None:
        over = qualifying_lengths(lengths[scored], min_snippets=min_snippets)
    return length_macro_average(values[scored], lengths[scored], over)


def _check_same_snippets(a: np.ndarray, b: np.ndarray) -> None:
    if not np.array_equal(a, b):
        raise InputError("paired scores need the same snippets in the same order: their lengths differ")

"""A diagnostic classifier's accuracy on a test split, per snippet, with bootstrap intervals, and
selectivity (Hewitt & Liang, EMNLP 2019, arXiv:1909.03368): task accuracy - control accuracy.

Accuracy is the share of a snippet's tokens labelled right; the reported figure is its mean over
snippets, so that its interval (`codeprobe.uncertainty.mean_ci`) and a paired difference
(`paired_difference`: the same snippets scored two ways, e.g. task against control) rest on
snippets, as every score codeprobe reports. The token-level (micro) accuracy is
`token_accuracy`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codeprobe.errors import InputError
from codeprobe.uncertainty import Interval, mean_ci, paired_difference


@dataclass(frozen=True, eq=False)
class AccuracyEvaluation:
    """One classifier's right tokens per test snippet.

    Attributes:
        correct: int64 (m,), tokens labelled right in each snippet.
        tokens: int64 (m,), tokens in each snippet.
    """

    correct: np.ndarray
    tokens: np.ndarray

    @property
    def per_snippet(self) -> np.ndarray:
        """float64 (m,): each snippet's accuracy."""
        return self.correct / self.tokens

    @property
    def accuracy(self) -> float:
        """The mean over snippets of their accuracy."""
        return float(self.per_snippet.mean())

    @property
    def token_accuracy(self) -> float:
        """Right tokens over all tokens."""
        return float(self.correct.sum() / self.tokens.sum())

    def interval(self, *, random_state: int = 0) -> Interval:
        """`accuracy` with its 95% bootstrap interval over snippets."""
        return mean_ci(self.per_snippet, random_state=random_state)

    def difference(self, other: AccuracyEvaluation, *, random_state: int = 0) -> Interval:
        """Mean over snippets of this accuracy minus `other`'s on the same snippets, with its 95%
        paired bootstrap interval.

        Raises:
            InputError: `other` scored other snippets (their token counts differ).
        """
        if not np.array_equal(self.tokens, other.tokens):
            raise InputError("paired accuracies need the same test snippets, in the same order")
        return paired_difference(self.per_snippet, other.per_snippet, random_state=random_state)

    @classmethod
    def from_predictions(cls, predicted: np.ndarray, gold: np.ndarray, offsets: np.ndarray) -> AccuracyEvaluation:
        """From class ids int (N,) predicted and gold, of snippets whose tokens are
        [offsets[k], offsets[k + 1])."""
        right = np.concatenate(([0], np.cumsum(predicted == gold)))
        return cls(correct=np.diff(right[offsets]).astype(np.int64), tokens=np.diff(offsets).astype(np.int64))


def selectivity(task: AccuracyEvaluation, control: AccuracyEvaluation, *, random_state: int = 0) -> Interval:
    """Task accuracy - control accuracy on the same test snippets (Hewitt & Liang's
    selectivity), the mean over snippets with its 95% paired bootstrap interval."""
    return task.difference(control, random_state=random_state)

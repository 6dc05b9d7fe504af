"""Control tasks (Hewitt & Liang, "Designing and Interpreting Probes with Control Tasks", EMNLP
2019, arXiv:1909.03368): the same tokens and the same label set, but each token *type* (its
text) gets a label drawn at random from the task's empirical label distribution on the
training tokens, once, so every occurrence of a type has the same label. A probe that does well
on the control task memorises types; **selectivity** = task accuracy - control accuracy.

The draw is a function of the seed and the type's text alone: the type's uniform number in
[0, 1) is the top 53 bits of the 8-byte BLAKE2b of (seed, text), and its label the inverse of the
distribution's cumulative sum at that number. So a type gets its label without a table of the
types seen, in any split and any process, the same seed gives the same assignment and another
seed an independent one.
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codeprobe.errors import InputError

_BITS = 53  # a float64's mantissa: the hash's top 53 bits give a number in [0, 1) exactly


@dataclass(frozen=True)
class ControlTask:
    """A control task of K classes.

    Attributes:
        distribution: the K class probabilities labels are drawn from (sum 1).
        random_state: the seed of the assignment.
    """

    distribution: tuple[float, ...]
    random_state: int = 0

    @property
    def n_classes(self) -> int:
        return len(self.distribution)

    @classmethod
    def from_labels(cls, labels: Sequence[np.ndarray], n_classes: int, *, random_state: int = 0) -> ControlTask:
        """The control task of training labels `labels` (per snippet, int class ids in
        0..n_classes - 1): its distribution is their empirical one, over tokens.

        Raises:
            InputError: no label, an id outside 0..n_classes - 1, or a seed that is not an integer.
        """
        if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
            raise InputError(f"random_state must be an integer, got {random_state!r}")
        ids = np.concatenate([np.asarray(a, dtype=np.int64).ravel() for a in labels]) if len(labels) else []
        if len(ids) == 0:
            raise InputError("a control task needs training labels: got none")
        if ids.min() < 0 or ids.max() >= n_classes:
            raise InputError(f"class ids must lie in 0..{n_classes - 1}, got {ids.min()}..{ids.max()}")
        counts = np.bincount(ids, minlength=n_classes)
        return cls(distribution=tuple((counts / counts.sum()).tolist()), random_state=int(random_state))

    def labels(self, texts: Sequence[str]) -> np.ndarray:
        """int64 (n,): the control label of each token, by its text."""
        if len(texts) == 0:
            return np.zeros(0, dtype=np.int64)
        types, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
        seed = f"{self.random_state}\x00".encode()
        u = (
            np.fromiter(
                (
                    int.from_bytes(hashlib.blake2b(seed + t.encode("utf-8"), digest_size=8).digest(), "big")
                    >> (64 - _BITS)
                    for t in types
                ),
                np.float64,
                len(types),
            )
            * 2.0**-_BITS
        )
        p = np.asarray(self.distribution, dtype=np.float64)
        cdf = np.cumsum(p) / p.sum()
        # From the last class with any mass on, exactly 1: rounding never picks an empty class.
        cdf[np.flatnonzero(p)[-1] :] = 1.0
        return np.searchsorted(cdf, u, side="right")[inverse.ravel()].astype(np.int64)

"""Label names to class ids and back (`LabelVocabulary`), chosen on training labels only.

A label seen fewer than `min_count` times among the training tokens is merged into the class
`OTHER`, and so is any label the training tokens never had (a node type only the test split
holds): `OTHER` is always the last class, so every label has an id. Classes are ordered by
their training count, most frequent first (ties by name): id 0 is the majority class.
"""

from __future__ import annotations

import numbers
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from codeprobe.errors import InputError

OTHER = "<other>"
DEFAULT_MIN_COUNT = 5


@dataclass(frozen=True)
class LabelVocabulary:
    """Class ids of label names.

    Attributes:
        names: the name of each class id; the last is `OTHER`.
        min_count: the least training count a label needed for a class of its own.
    """

    names: tuple[str, ...]
    min_count: int = DEFAULT_MIN_COUNT

    def __len__(self) -> int:
        return len(self.names)

    @property
    def other(self) -> int:
        """The id of `OTHER`."""
        return len(self.names) - 1

    @classmethod
    def from_labels(cls, labels: Iterable[Sequence[str]], *, min_count: int = DEFAULT_MIN_COUNT) -> LabelVocabulary:
        """The vocabulary of the training labels `labels` (per snippet, a sequence of names).

        Raises:
            InputError: `min_count` is not an integer >= 1, or a label is `OTHER` itself.
        """
        if isinstance(min_count, bool) or not isinstance(min_count, numbers.Integral) or min_count < 1:
            raise InputError(f"min_count must be an integer >= 1, got {min_count!r}")
        counts = Counter(label for snippet in labels for label in snippet)
        if OTHER in counts:
            raise InputError(f"{OTHER!r} is the vocabulary's own class name, not a label")
        kept = sorted((name for name, c in counts.items() if c >= min_count), key=lambda n: (-counts[n], n))
        return cls(names=(*kept, OTHER), min_count=int(min_count))

    def encode(self, labels: Sequence[str]) -> np.ndarray:
        """int64 (n,): the class id of each label (`other` for a label without a class)."""
        if len(labels) == 0:
            return np.zeros(0, dtype=np.int64)
        unique, inverse = np.unique(np.asarray(labels, dtype=object), return_inverse=True)
        index = {name: k for k, name in enumerate(self.names)}
        ids = np.fromiter((index.get(u, self.other) for u in unique), np.int64, len(unique))
        return ids[inverse.ravel()]

    def decode(self, ids: Sequence[int] | np.ndarray) -> tuple[str, ...]:
        """The names of class ids (ints in 0..len - 1)."""
        return tuple(self.names[k] for k in np.asarray(ids, dtype=np.int64).tolist())

    def as_dict(self) -> dict:
        return {"names": list(self.names), "min_count": self.min_count}

    @classmethod
    def from_dict(cls, d: dict) -> LabelVocabulary:
        return cls(names=tuple(d["names"]), min_count=d["min_count"])

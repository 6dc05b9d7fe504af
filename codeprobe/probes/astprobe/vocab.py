"""Label vocabularies for c and u, built from the training split only.

The reference built them from train + valid + test, so a probe could "know" labels that only
occur in test. Here a label first seen outside training maps to an explicit `<unk>` (id 0): it
is never a training target (losses ignore it) and a gold `<unk>` can never be predicted right.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

UNKNOWN = "<unk>"
UNKNOWN_ID = 0


@dataclass(frozen=True)
class LabelVocab:
    """An id for every label seen in training; `labels[0]` is `<unk>`.

    Attributes:
        labels: id -> label; training labels by decreasing frequency, ties by name.
    """

    labels: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.labels or self.labels[0] != UNKNOWN:
            raise ValueError(f"a label vocabulary starts with {UNKNOWN!r}")
        object.__setattr__(self, "_index", {x: i for i, x in enumerate(self.labels)})

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]]) -> LabelVocab:
        """Vocabulary of the labels in `sequences` (the training split's c or u lists)."""
        counts = Counter(x for seq in sequences for x in seq)
        counts.pop(UNKNOWN, None)
        ordered = sorted(counts, key=lambda x: (-counts[x], x))
        return cls((UNKNOWN, *ordered))

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, label: str) -> bool:
        return label in self._index

    def encode(self, labels: Iterable[str]) -> np.ndarray:
        """int64 ids, `UNKNOWN_ID` for labels not in the vocabulary."""
        get = self._index.get
        return np.fromiter((get(x, UNKNOWN_ID) for x in labels), dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> tuple[str, ...]:
        return tuple(self.labels[i] for i in ids)

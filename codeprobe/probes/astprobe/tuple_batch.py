"""`TupleBatch`: the (d, c, u) of a batch of snippets as flat arrays, labels as ids into name
tables; what tree recovery, scoring and the probe's targets read, gold or predicted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codeprobe.errors import InputError
from codeprobe.probes.astprobe.tuples import ASTTuple


@dataclass(frozen=True)
class TupleBatch:
    """The (d, c, u) of B snippets, concatenated in snippet order.

    Attributes:
        lengths: int64 (B,), tokens per snippet (each >= 1).
        d: float64 (sum(lengths) - B,), any scores whose order matters (gold heights or
            predicted squared distances).
        c: int64 (sum(lengths) - B,), ids into `c_names`.
        u: int64 (sum(lengths),), ids into `u_names`.
        c_names, u_names: the label strings the ids refer to.
    """

    lengths: np.ndarray
    d: np.ndarray
    c: np.ndarray
    u: np.ndarray
    c_names: tuple[str, ...]
    u_names: tuple[str, ...]

    def __post_init__(self) -> None:
        n_tok = int(self.lengths.sum())
        n_split = n_tok - int(self.lengths.size)
        if (self.lengths < 1).any():
            raise InputError("every snippet needs at least one token")
        if self.d.shape != (n_split,) or self.c.shape != (n_split,) or self.u.shape != (n_tok,):
            raise InputError(
                f"shapes do not match the lengths: d {self.d.shape}, c {self.c.shape}, "
                f"u {self.u.shape}; expected ({n_split},), ({n_split},), ({n_tok},)"
            )

    def __len__(self) -> int:
        return int(self.lengths.size)

    @classmethod
    def from_labels(
        cls,
        d: Sequence[np.ndarray],
        c: Sequence[Sequence[str]],
        u: Sequence[Sequence[str]],
    ) -> TupleBatch:
        """Build a batch from per-snippet d arrays and label strings."""
        c_names, c_ids = _intern(c)
        u_names, u_ids = _intern(u)
        lengths = np.fromiter((len(x) for x in u), dtype=np.int64, count=len(u))
        flat_d = np.concatenate([np.asarray(x, dtype=np.float64) for x in d]) if len(d) else np.zeros(0)
        return cls(lengths, flat_d, c_ids, u_ids, c_names, u_names)

    @classmethod
    def from_tuples(cls, tuples: Sequence[ASTTuple]) -> TupleBatch:
        """The gold batch of extracted tuples."""
        return cls.from_labels([t.d for t in tuples], [t.c for t in tuples], [t.u for t in tuples])

    def snippets(self, sel: slice) -> TupleBatch:
        """The batch of snippets `sel` (a step-1 slice) of this one."""
        tok = np.r_[0, np.cumsum(self.lengths)]
        split = np.r_[0, np.cumsum(self.lengths - 1)]
        return TupleBatch(
            lengths=self.lengths[sel],
            d=self.d[split[sel.start] : split[sel.stop]],
            c=self.c[split[sel.start] : split[sel.stop]],
            u=self.u[tok[sel.start] : tok[sel.stop]],
            c_names=self.c_names,
            u_names=self.u_names,
        )


def _intern(seqs: Sequence[Sequence[str]]) -> tuple[tuple[str, ...], np.ndarray]:
    table: dict[str, int] = {}
    ids = [table.setdefault(x, len(table)) for seq in seqs for x in seq]
    return tuple(table), np.asarray(ids, dtype=np.int64)

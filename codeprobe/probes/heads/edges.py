"""A snippet's relation edges as flat arrays, and the sample the heads scorer takes.

An edge is (relation code, head token, dependent span [start, end)) over codeprobe's code
tokens (the edges `codeprobe.syntax` extracts from the grammar's field names: the head token is
the first token of the head span). Relation codes are small non-negative ints that must mean the same
relation in every snippet of a dataset (one vocabulary: `codeprobe.syntax.relations`'
`RelationEdges.select`); their names live with that vocabulary (`evaluate(relation_names=...)`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codeprobe.errors import InputError


def _int_array(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise InputError(f"{name} must be 1-d, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise InputError(f"{name} must be integers, got {a.dtype}")
    return a.astype(np.int64, copy=False)


@dataclass(frozen=True)
class EdgeArrays:
    """E relation edges of one snippet, as int64 (E,) arrays.

    Attributes:
        relation: relation codes (>= 0).
        head: the head token's index (the first token of the head span), 0 <= head < n.
        dep_start, dep_end: the dependent span [dep_start, dep_end) of token indices,
            0 <= dep_start < dep_end <= n.

    Build with `EdgeArrays.of(...)` (converts and checks lengths); `check(n)` checks the
    indices against a snippet of n tokens.
    """

    relation: np.ndarray
    head: np.ndarray
    dep_start: np.ndarray
    dep_end: np.ndarray

    @classmethod
    def of(cls, relation, head, dep_start, dep_end) -> EdgeArrays:
        """Edges from four equal-length integer sequences.

        Raises:
            InputError: not 1-d integers, or unequal lengths.
        """
        arrays = [
            _int_array(x, name)
            for x, name in ((relation, "relation"), (head, "head"), (dep_start, "dep_start"), (dep_end, "dep_end"))
        ]
        if len({a.size for a in arrays}) != 1:
            raise InputError(f"edge arrays differ in length: {[a.size for a in arrays]}")
        return cls(*arrays)

    @classmethod
    def like(cls, edges) -> EdgeArrays:
        """The edges of any object with `relation`, `head`, `dep_start` and `dep_end` arrays,
        e.g. `codeprobe.syntax.relations.RelationEdges` after `select(vocabulary)` (so that a
        code means the same relation in every snippet of the dataset).
        """
        return cls.of(edges.relation, edges.head, edges.dep_start, edges.dep_end)

    @classmethod
    def empty(cls) -> EdgeArrays:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, z, z)

    def __len__(self) -> int:
        return int(self.relation.size)

    def check(self, n: int) -> EdgeArrays:
        """Self, after checking every index against a snippet of `n` tokens.

        Raises:
            InputError: a negative relation code, a head outside [0, n), or a dependent span
                that is empty or outside [0, n).
        """
        if not len(self):
            return self
        if self.relation.min() < 0:
            raise InputError("relation codes must be >= 0")
        if self.head.min() < 0 or self.head.max() >= n:
            raise InputError(f"a head token lies outside the snippet's {n} tokens")
        if self.dep_start.min() < 0 or self.dep_end.max() > n or np.any(self.dep_end <= self.dep_start):
            raise InputError(f"a dependent span is empty or lies outside the snippet's {n} tokens")
        return self


@dataclass(frozen=True)
class HeadsSample:
    """One snippet for the heads scorer.

    Attributes:
        sample_id: the snippet's id (seeds its random-attention baseline).
        attention: float (L, H, n, n) token attention of every layer and head, rows = the
            attending (query) token, each row summing to ~1 (what `codeprobe.model.pooling`
            gives with heads="all"). Any source of that shape: a model, a random-weights model.
        edges: its `EdgeArrays` over the n tokens.
        tokens: the n code tokens' texts; needed only for the keyword baseline (None: no
            keyword rule can fire in this snippet).
    """

    sample_id: str
    attention: np.ndarray
    edges: EdgeArrays
    tokens: Sequence[str] | None = None

    @property
    def n_tokens(self) -> int:
        return int(np.shape(self.attention)[-1])

    def checked(self) -> HeadsSample:
        """Self after checking shapes and edge indices.

        Raises:
            InputError: attention not (L, H, n, n), tokens not n long, or bad edges.
        """
        shape = np.shape(self.attention)
        if len(shape) != 4 or shape[2] != shape[3]:
            raise InputError(f"sample {self.sample_id!r}: attention must be (L, H, n, n), got {shape}")
        if self.tokens is not None and len(self.tokens) != shape[3]:
            raise InputError(f"sample {self.sample_id!r}: {len(self.tokens)} tokens for attention over {shape[3]}")
        try:
            self.edges.check(shape[3])
        except InputError as err:
            raise InputError(f"sample {self.sample_id!r}: {err}") from None
        return self


def on_kept_tokens(edges: Any, positions: np.ndarray, n_tokens: int) -> tuple[EdgeArrays, np.ndarray]:
    """Relation edges over all `n_tokens` code tokens moved onto the tokens the model kept.

    Args:
        edges: `RelationEdges` (or anything with relation, head, dep_start, dep_end arrays).
        positions: int (k,), the kept tokens' indices into the code tokens, increasing.

    Returns:
        (the kept edges as `EdgeArrays` over kept-token indices 0..k-1, bool (m,) which edges
        were kept): an edge is kept when its head token and every token of its dependent span
        were kept.
    """
    positions = np.asarray(positions, dtype=np.int64)
    kept = np.zeros(n_tokens, dtype=bool)
    kept[positions] = True
    index = np.full(n_tokens, -1, dtype=np.int64)
    index[positions] = np.arange(positions.size)
    missing = np.concatenate([[0], np.cumsum(~kept)])  # tokens not kept before each index
    head, start, end = (np.asarray(x, dtype=np.int64) for x in (edges.head, edges.dep_start, edges.dep_end))
    keep = kept[head] & (missing[end] == missing[start])
    moved = EdgeArrays.of(
        np.asarray(edges.relation)[keep], index[head[keep]], index[start[keep]], index[end[keep] - 1] + 1
    )
    return moved, keep

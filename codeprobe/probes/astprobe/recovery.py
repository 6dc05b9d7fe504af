"""Tree recovery from (d, c, u), without graphs: the post-processed constituents of every
snippet's recovered tree (`constituents`), which `tree_scores` scores against the gold trees.

The spec rebuilds a tree by splitting at the first argmax of d and recursing. That tree is the
Cartesian tree of d (ties going to the leftmost), so the node at split point i spans exactly
the d positions between the nearest earlier d_j >= d_i and the nearest later d_j > d_i, i.e. the
tokens (prev_ge + 1) .. next_gt. Both neighbours are found for every position of every snippet at
once by binary lifting over a sparse max table, with +inf sentinels between snippets:
O(N log N) numpy work for a whole evaluation set.

Post-processing (spec): `<empty>` nodes disappear (a predicted `<empty>` root stays, renamed
`bad_root`), unary labels become nodes above their leaves, and a chain label `a<sep>b` becomes
one node per label. A constituent is (label, set of token indices); sets here are always
contiguous, so (label, lo, hi) names it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codeprobe.probes.astprobe._rmq import max_table
from codeprobe.probes.astprobe.tuple_batch import TupleBatch
from codeprobe.probes.astprobe.tuples import EMPTY, SEP

BAD_ROOT = "bad_root"


@dataclass(frozen=True)
class Constituents:
    """Every non-terminal of the recovered trees of a batch, one row each.

    Attributes:
        snippet: int64 (m,), which snippet of the batch.
        label: int64 (m,), ids into `labels` (single labels: chains are already expanded).
        lo, hi: int64 (m,), first and last token index (inclusive) under the node.
        labels: the label strings.
    Rows of one snippet come outer chain label first, internal nodes in d order, then the
    unary nodes in token order.
    """

    snippet: np.ndarray
    label: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    labels: tuple[str, ...]

    def of(self, i: int) -> list[tuple[str, int, int]]:
        """(label, lo, hi) of snippet `i`'s constituents."""
        rows = np.flatnonzero(self.snippet == i)
        return [(self.labels[self.label[r]], int(self.lo[r]), int(self.hi[r])) for r in rows]


def split_spans(d: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token span of the node each split point becomes in the recursive argmax rebuild.

    Args:
        d: float (sum(lengths) - B,), concatenated split scores.
        lengths: int (B,), tokens per snippet.

    Returns:
        lo, hi: int64 (sum(lengths) - B,), first and last token (local to the snippet) under
        each split point's node; the root of snippet s has lo = 0 and hi = lengths[s] - 1.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    m = lengths - 1
    # Finite scores below +inf sentinels: NaN (a diverged probe) sorts lowest.
    values = np.nan_to_num(np.asarray(d, dtype=np.float64), nan=-np.finfo(np.float64).max)
    values = np.clip(values, -np.finfo(np.float64).max, np.finfo(np.float64).max)
    # Layout: inf, d of snippet 0, inf, d of snippet 1, ..., inf.
    block = np.r_[0, np.cumsum(m + 1)]  # position of each snippet's left sentinel
    total = int(block[-1]) + 1
    seq = np.full(total, np.inf)
    snippet_of = np.repeat(np.arange(lengths.size), m)
    local = np.arange(values.size) - np.repeat(np.r_[0, np.cumsum(m)[:-1]], m)
    pos = block[snippet_of] + 1 + local
    seq[pos] = values
    table = max_table(seq)
    levels = range(len(table) - 1, -1, -1)

    target = seq[pos]
    # prev_ge: move the exclusive left bound p down while seq[p - 2^k : p] < target.
    p = pos.copy()
    for k in levels:
        cand = p - (1 << k)
        ok = cand >= 0
        step = np.zeros_like(ok)
        step[ok] = table[k][cand[ok]] < target[ok]
        p = np.where(step, cand, p)
    prev_ge = p - 1
    # next_gt: move the inclusive right bound p up while seq[p + 1 : p + 1 + 2^k] <= target.
    p = pos.copy()
    for k in levels:
        ok = p + (1 << k) < total
        step = np.zeros_like(ok)
        step[ok] = table[k][p[ok] + 1] <= target[ok]
        p = np.where(step, p + (1 << k), p)
    next_gt = p + 1
    left = block[snippet_of]
    return prev_ge - left, next_gt - left - 1


def constituents(batch: TupleBatch, labels: LabelAtoms | None = None) -> Constituents:
    """The post-processed constituents of every snippet's recovered tree (see module doc)."""
    atoms = labels if labels is not None else LabelAtoms.of(batch)
    lengths = batch.lengths
    n_split = lengths - 1
    lo, hi = split_spans(batch.d, lengths)
    snippet_c = np.repeat(np.arange(lengths.size), n_split)
    c_name = atoms.rows_of(batch.c_names)[batch.c]
    # An <empty> root survives as bad_root; other <empty> nodes have no atoms and vanish.
    is_root = (lo == 0) & (hi == n_split[snippet_c])
    c_name = np.where(is_root & (c_name == atoms.empty_row), atoms.bad_root_row, c_name)
    snippet_u = np.repeat(np.arange(lengths.size), lengths)
    token = np.arange(batch.u.size) - np.repeat(np.r_[0, np.cumsum(lengths)[:-1]], lengths)
    u_name = atoms.rows_of(batch.u_names)[batch.u]

    rows = np.r_[c_name, u_name]
    count = atoms.count[rows]
    take = np.repeat(np.arange(rows.size), count)
    within = np.arange(take.size) - np.repeat(np.cumsum(count) - count, count)
    label = atoms.flat[atoms.start[rows][take] + within]
    snippet = np.r_[snippet_c, snippet_u][take]
    order = np.argsort(snippet, kind="stable")
    return Constituents(
        snippet=snippet[order],
        label=label[order],
        lo=np.r_[lo, token][take][order],
        hi=np.r_[hi, token][take][order],
        labels=atoms.atoms,
    )


@dataclass(frozen=True)
class LabelAtoms:
    """Label names of one or more batches, expanded into single labels ("atoms").

    Rows: one per distinct name (`<empty>` first, then `bad_root`, then the batches' c and u
    names); `flat[start[r] : start[r] + count[r]]` are row r's atom ids, outermost first, and
    `<empty>` has none.
    """

    atoms: tuple[str, ...]
    row: dict[str, int]
    start: np.ndarray
    count: np.ndarray
    flat: np.ndarray
    empty_row: int = 0
    bad_root_row: int = 1

    @classmethod
    def of(cls, *batches: TupleBatch) -> LabelAtoms:
        row: dict[str, int] = {EMPTY: 0, BAD_ROOT: 1}
        for batch in batches:
            for name in batch.c_names + batch.u_names:
                row.setdefault(name, len(row))
        atom_ids: dict[str, int] = {}
        per_row = []
        for name in row:
            parts = [] if name == EMPTY else name.split(SEP)
            per_row.append([atom_ids.setdefault(a, len(atom_ids)) for a in parts])
        count = np.array([len(x) for x in per_row], dtype=np.int64)
        flat = np.array([a for x in per_row for a in x], dtype=np.int64)
        return cls(tuple(atom_ids), row, np.cumsum(count) - count, count, flat)

    def rows_of(self, names: tuple[str, ...]) -> np.ndarray:
        """int64 (len(names),): the row of each name (names must be known)."""
        return np.array([self.row[x] for x in names], dtype=np.int64)

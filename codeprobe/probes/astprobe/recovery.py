"""Tree recovery from (d, c, u) and AST-Probe's precision / recall / F1, without graphs.

The spec rebuilds a tree by splitting at the first argmax of d and recursing. That tree is the
Cartesian tree of d (ties going to the leftmost), so the node at split point i spans exactly
the d positions between the nearest earlier d_j >= d_i and the nearest later d_j > d_i, i.e. the
tokens (prev_ge + 1) .. next_gt. Both neighbours are found for every position of every snippet at
once by binary lifting over a sparse max table, with +inf sentinels between snippets:
O(N log N) numpy work for a whole evaluation set.

`recall_by_label` gives the reference code's per-non-terminal recall table from the same
constituents.

Post-processing (spec): `<empty>` nodes disappear (a predicted `<empty>` root stays, renamed
`bad_root`), unary labels become nodes above their leaves, and a chain label `a<sep>b` becomes
one node per label. A constituent is (label, set of token indices); sets here are always
contiguous, so (label, lo, hi) names it exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codeprobe.errors import InputError
from codeprobe.probes.astprobe._rmq import max_table
from codeprobe.probes.astprobe.tuples import EMPTY, SEP, ASTTuple

BAD_ROOT = "bad_root"
_KEY_LIMIT = 2**62


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


@dataclass(frozen=True)
class SnippetScores:
    """Per-snippet precision, recall and F1, float64 (B,) each; `mean()` gives the report."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray

    def mean(self) -> dict[str, float]:
        """Macro averages over snippets (the paper's numbers)."""
        return {
            "precision": float(self.precision.mean()) if self.precision.size else 0.0,
            "recall": float(self.recall.mean()) if self.recall.size else 0.0,
            "f1": float(self.f1.mean()) if self.f1.size else 0.0,
        }


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


def constituents(batch: TupleBatch, labels: _LabelAtoms | None = None) -> Constituents:
    """The post-processed constituents of every snippet's recovered tree (see module doc)."""
    atoms = labels if labels is not None else _LabelAtoms.of(batch)
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
class LabelRecall:
    """Recall of the gold constituents per non-terminal label over a split: the table the
    reference code reports (arXiv 2206.11719; its `get_recall_non_terminal`), most recalled
    first.

    For each snippet and each label L its gold tree has, recall_L = (predicted constituents,
    with repeats, that equal a gold constituent labelled L) / (gold constituents labelled L);
    `recall` is the mean of that over the snippets whose gold tree has L (so a repeated
    predicted constituent can push one snippet's value above 1, as in the reference).

    Attributes:
        labels: (m,) the non-terminal labels (single labels: chains are expanded).
        recall: float64 (m,), mean recall per label.
        n_snippets: int64 (m,), snippets whose gold tree has the label.
        n_gold: int64 (m,), gold constituents with the label, over all snippets.
    """

    labels: tuple[str, ...]
    recall: np.ndarray
    n_snippets: np.ndarray
    n_gold: np.ndarray

    def as_dict(self) -> dict[str, float]:
        """{label: mean recall}, the reference's output."""
        return {x: float(r) for x, r in zip(self.labels, self.recall)}

    def format(self) -> str:
        """A printable table: label, recall, snippets, gold constituents."""
        width = max([len("label"), *map(len, self.labels)])
        lines = [f"{'label':<{width}}  recall  snippets  constituents"]
        for x, r, s, g in zip(self.labels, self.recall, self.n_snippets, self.n_gold):
            lines.append(f"{x:<{width}}  {r:6.4f}  {s:8d}  {g:12d}")
        return "\n".join(lines)


def _matched(pred: TupleBatch, gold: TupleBatch):
    """Per chunk of snippets: (first snippet, predicted and gold constituents, which predicted
    ones are in the gold list). Keys (snippet, label, lo, hi) are packed into int64; chunks keep
    them below 2**62."""
    if not np.array_equal(pred.lengths, gold.lengths):
        raise InputError("predicted and gold batches differ in snippets or token counts")
    atoms = _LabelAtoms.of(pred, gold)
    b = len(gold)
    width = int(gold.lengths.max()) if b else 1
    per_snippet = len(atoms.atoms) * width * width
    chunk = max(1, _KEY_LIMIT // per_snippet)
    for first in range(0, b, chunk):
        sel = slice(first, min(b, first + chunk))
        p = constituents(_slice(pred, sel), atoms)
        g = constituents(_slice(gold, sel), atoms)
        hit = np.isin(_keys(p, len(atoms.atoms), width), _keys(g, len(atoms.atoms), width))
        yield sel, p, g, hit


def score(pred: TupleBatch, gold: TupleBatch) -> SnippetScores:
    """Per-snippet P, R, F1 of the predicted trees against the gold trees.

    P = hits / #pred, R = hits / #gold, F1 = 2PR / (P + R), each 0 where its denominator is 0;
    hits counts predicted constituents (with repeats) that appear in the gold list.
    """
    b = len(gold)
    precision = np.zeros(b)
    recall = np.zeros(b)
    for sel, p, g, hit in _matched(pred, gold):
        n = sel.stop - sel.start
        hits = np.bincount(p.snippet[hit], minlength=n)
        n_pred = np.bincount(p.snippet, minlength=n)
        n_gold = np.bincount(g.snippet, minlength=n)
        precision[sel] = np.divide(hits, n_pred, out=np.zeros(n), where=n_pred > 0)
        recall[sel] = np.divide(hits, n_gold, out=np.zeros(n), where=n_gold > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros(b), where=total > 0)
    return SnippetScores(precision, recall, f1)


def recall_by_label(pred: TupleBatch, gold: TupleBatch) -> LabelRecall:
    """The reference's per-non-terminal recall table of predicted against gold trees (see
    `LabelRecall`). Raises InputError if the batches differ in snippets or token counts."""
    pairs, counts, recalls = [], [], []
    labels: tuple[str, ...] = ()
    for sel, p, g, hit in _matched(pred, gold):
        labels = p.labels
        n_labels = len(labels)
        # (snippet, label) pairs of the gold trees, and the matched predictions falling in each.
        gold_pair = (g.snippet + sel.start) * n_labels + g.label
        pair, n_gold = np.unique(gold_pair, return_counts=True)
        matched = (p.snippet[hit] + sel.start) * n_labels + p.label[hit]
        hits = np.bincount(np.searchsorted(pair, matched), minlength=pair.size)
        pairs.append(pair % n_labels)
        counts.append(n_gold)
        recalls.append(hits / n_gold)
    label = np.concatenate(pairs) if pairs else np.zeros(0, np.int64)
    n_gold = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    recall = np.concatenate(recalls) if recalls else np.zeros(0)
    m = len(labels)
    n_snippets = np.bincount(label, minlength=m)
    total = np.bincount(label, weights=recall, minlength=m)
    present = np.flatnonzero(n_snippets)
    mean = total[present] / n_snippets[present]
    order = np.array(sorted(range(present.size), key=lambda k: (-mean[k], labels[present[k]])), dtype=np.int64)
    rows = present[order]
    return LabelRecall(
        labels=tuple(labels[k] for k in rows),
        recall=mean[order],
        n_snippets=n_snippets[rows].astype(np.int64),
        n_gold=np.bincount(label, weights=n_gold, minlength=m)[rows].astype(np.int64),
    )


def _keys(c: Constituents, n_labels: int, width: int) -> np.ndarray:
    return ((c.snippet * n_labels + c.label) * width + c.lo) * width + c.hi


def _slice(batch: TupleBatch, sel: slice) -> TupleBatch:
    tok = np.r_[0, np.cumsum(batch.lengths)]
    split = np.r_[0, np.cumsum(batch.lengths - 1)]
    return TupleBatch(
        lengths=batch.lengths[sel],
        d=batch.d[split[sel.start] : split[sel.stop]],
        c=batch.c[split[sel.start] : split[sel.stop]],
        u=batch.u[tok[sel.start] : tok[sel.stop]],
        c_names=batch.c_names,
        u_names=batch.u_names,
    )


@dataclass(frozen=True)
class _LabelAtoms:
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
    def of(cls, *batches: TupleBatch) -> _LabelAtoms:
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


def _intern(seqs: Sequence[Sequence[str]]) -> tuple[tuple[str, ...], np.ndarray]:
    table: dict[str, int] = {}
    ids = [table.setdefault(x, len(table)) for seq in seqs for x in seq]
    return tuple(table), np.asarray(ids, dtype=np.int64)


def render_tree(nodes: Sequence[tuple[str, int, int]], tokens: Sequence[str], max_token: int = 30) -> list[str]:
    """An indented text drawing of a tree given by its constituents (label, lo, hi): one line
    per constituent, outer before inner, and one per token (quoted, cut to `max_token`)."""
    order = sorted(range(len(nodes)), key=lambda k: (nodes[k][1], -nodes[k][2], k))
    lines: list[str] = []
    open_until: list[int] = []
    k = 0
    for t, text in enumerate(tokens):
        while open_until and open_until[-1] < t:
            open_until.pop()
        while k < len(order) and nodes[order[k]][1] == t:
            label, _, hi = nodes[order[k]]
            lines.append("  " * len(open_until) + label)
            open_until.append(hi)
            k += 1
        shown = text if len(text) <= max_token else text[: max_token - 3] + "..."
        lines.append("  " * len(open_until) + repr(shown))
    return lines


def tree_to_networkx(nodes: Sequence[tuple[str, int, int]], tokens: Sequence[str]):
    """A recovered (or gold) tree as a `networkx.DiGraph`, for drawing only: node k < len(nodes)
    is constituent k (attrs `label`, `lo`, `hi`), then one node per token (attrs `text`,
    `index`); edges go parent -> child."""
    import networkx as nx

    graph = nx.DiGraph()
    order = sorted(range(len(nodes)), key=lambda k: (nodes[k][1], -nodes[k][2], k))
    for k, (label, lo, hi) in enumerate(nodes):
        graph.add_node(k, label=label, lo=lo, hi=hi)
    stack: list[int] = []  # open constituents, outermost first
    it = iter(order)
    pending = next(it, None)
    for t, text in enumerate(tokens):
        leaf = len(nodes) + t
        graph.add_node(leaf, text=text, index=t)
        while stack and nodes[stack[-1]][2] < t:
            stack.pop()
        while pending is not None and nodes[pending][1] == t:
            if stack:
                graph.add_edge(stack[-1], pending)
            stack.append(pending)
            pending = next(it, None)
        if stack:
            graph.add_edge(stack[-1], leaf)
    return graph

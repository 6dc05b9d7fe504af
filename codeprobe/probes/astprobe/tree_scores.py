"""How well recovered trees match the gold trees: AST-Probe's per-snippet precision / recall /
F1 (`score`, `SnippetScores`) and the reference code's recall per non-terminal label
(`recall_by_label`, `LabelRecall`), both over the constituents of `recovery.constituents`.

A predicted constituent is a hit when the gold tree has the same (label, lo, hi); hits are
counted with repeats. Constituents are matched by packing (snippet, label, lo, hi) into int64
keys, a chunk of snippets at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codeprobe.errors import InputError
from codeprobe.probes.astprobe.recovery import Constituents, LabelAtoms, constituents
from codeprobe.probes.astprobe.tuple_batch import TupleBatch

_KEY_LIMIT = 2**62


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
    atoms = LabelAtoms.of(pred, gold)
    b = len(gold)
    width = int(gold.lengths.max()) if b else 1
    per_snippet = len(atoms.atoms) * width * width
    chunk = max(1, _KEY_LIMIT // per_snippet)
    for first in range(0, b, chunk):
        sel = slice(first, min(b, first + chunk))
        p = constituents(pred.snippets(sel), atoms)
        g = constituents(gold.snippets(sel), atoms)
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

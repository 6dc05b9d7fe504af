"""A split's gold as the loss reads it (`Targets`), and how its snippets are cut into batches.

A batch (`Batch`) is a set of snippets laid back to back: the rows of their tokens in the
split's flat hidden states, and their gold as `FlatTargets` (label ids of one vocabulary pair, and
every pair of split points with gold d_a > d_b), shared by every probe of the same snippets.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from codeprobe.probes.astprobe.probe import IGNORE, BatchLayout, FlatTargets, layout
from codeprobe.probes.astprobe.probe_data import ProbeData
from codeprobe.probes.astprobe.tuple_batch import TupleBatch
from codeprobe.probes.astprobe.vocab import UNKNOWN_ID, LabelVocab

EVAL_BATCH = 256  # snippets per evaluation batch


@dataclass(frozen=True)
class Batch:
    """One batch's token rows and gold, shared by every probe of the same snippets."""

    tok: np.ndarray  # int64 (n,): rows of the split's token hidden states
    targets: FlatTargets
    language: str


@dataclass(frozen=True, eq=False)
class Targets:
    """A split's gold as label ids of one vocabulary pair, with index helpers and every
    snippet's gold-ordered pairs (a, b), d_a > d_b, listed once (int32 positions inside the
    snippet: memory grows with the sum of squared snippet lengths, as a batch's pair list does)."""

    gold: TupleBatch
    language: str
    c: np.ndarray
    u: np.ndarray
    token_start: np.ndarray
    split_start: np.ndarray

    @classmethod
    def of(cls, data: ProbeData, c_vocab: LabelVocab, u_vocab: LabelVocab) -> Targets:
        gold = data.gold
        lengths = gold.lengths
        return cls(
            gold=gold,
            language=data.language,
            c=c_vocab.encode(gold.c_names)[gold.c] if gold.c.size else gold.c,
            u=u_vocab.encode(gold.u_names)[gold.u],
            token_start=np.cumsum(lengths) - lengths,
            split_start=np.cumsum(lengths - 1) - (lengths - 1),
        )

    @cached_property
    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(a, b, first row, count per snippet) of every snippet's gold-ordered pairs."""
        a, b, count = _ordered_pairs(self.gold, self.split_start)
        return a, b, np.cumsum(count) - count, count

    def __len__(self) -> int:
        return len(self.gold)

    def batch(self, ids: np.ndarray, device: str) -> Batch:
        """Snippets `ids` as one flat batch, for `stacked_loss`."""
        lengths = self.gold.lengths[ids]
        tok = _ranges(self.token_start[ids], lengths)
        split = _ranges(self.split_start[ids], lengths - 1)
        offset = np.cumsum(lengths) - lengths  # each snippet's first token in the batch
        pair_a, pair_b, pair_start, pair_count = self.pairs
        rows = _ranges(pair_start[ids], pair_count[ids])
        pair_offset = np.repeat(offset, pair_count[ids])
        diff = _ranges(offset, lengths - 1)  # the in-snippet differences
        c = np.full(tok.size - 1, IGNORE, dtype=np.int64)
        c[diff] = np.where(self.c[split] == UNKNOWN_ID, IGNORE, self.c[split])
        u = np.where(self.u[tok] == UNKNOWN_ID, IGNORE, self.u[tok])
        as_t = lambda a: torch.as_tensor(a, dtype=torch.long, device=device)  # noqa: E731
        targets = FlatTargets(
            pair_a=as_t(pair_a[rows] + pair_offset),
            pair_b=as_t(pair_b[rows] + pair_offset),
            c=as_t(c),
            u=as_t(u),
            c_count=as_t(np.count_nonzero(c != IGNORE)),
            u_count=as_t(np.count_nonzero(u != IGNORE)),
        )
        return Batch(tok, targets, self.language)

    def reference_batch(
        self, ids: np.ndarray, device: str
    ) -> tuple[np.ndarray, BatchLayout, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Snippets `ids` as (token rows, layout, d, c, u) for `ProbeModule.forward` and
        `loss_parts` (the single-probe form that prediction uses)."""
        lengths = self.gold.lengths[ids]
        tok = _ranges(self.token_start[ids], lengths)
        split = _ranges(self.split_start[ids], lengths - 1)
        as_t = lambda a, dt=torch.long: torch.as_tensor(a, dtype=dt, device=device)  # noqa: E731
        return (
            tok,
            layout(lengths, device),
            as_t(self.gold.d[split], torch.float32),
            as_t(self.c[split]),
            as_t(self.u[tok]),
        )


def eval_batches(n: int) -> list[np.ndarray]:
    """Snippet ids 0..n-1 in evaluation batches of about `EVAL_BATCH`."""
    return np.array_split(np.arange(n), max(1, math.ceil(n / EVAL_BATCH)))


def epoch_batches(sizes: Sequence[int], batch_size: int, rng: np.random.Generator) -> Iterator[tuple[int, np.ndarray]]:
    """(split, snippet ids) of one epoch: each split (of `sizes` snippets) shuffled and cut
    into batches, and the batches of all splits interleaved in a random order."""
    batches = []
    for which, size in enumerate(sizes):
        order = rng.permutation(size)
        batches += [(which, order[i : i + batch_size]) for i in range(0, order.size, batch_size)]
    for k in rng.permutation(len(batches)):
        yield batches[k]


def _ordered_pairs(gold: TupleBatch, split_start: np.ndarray):
    """Every snippet's pairs of split points (a, b) with gold d_a > d_b, as int32 positions
    inside the snippet, snippet after snippet, and their count per snippet."""
    m = gold.lengths - 1
    out_a, out_b, counts = [], [], []
    start = 0
    while start < m.size:
        # Snippets [start, stop): about 4M candidate pairs at a time (at least one snippet).
        stop = start + max(1, int(np.searchsorted(np.cumsum(m[start:] ** 2), 1 << 22, side="right")))
        lay = layout(gold.lengths[start:stop])
        pa, pb = lay.pair_a.numpy(), lay.pair_b.numpy()
        d = gold.d[split_start[start] : split_start[start] + int(m[start:stop].sum())]
        keep = d[pa] > d[pb]
        owner = np.repeat(np.arange(stop - start), m[start:stop] ** 2)[keep]
        first = (np.cumsum(m[start:stop]) - m[start:stop])[owner]
        out_a.append((pa[keep] - first).astype(np.int32))
        out_b.append((pb[keep] - first).astype(np.int32))
        counts.append(np.bincount(owner, minlength=stop - start))
        start = stop
    if not out_a:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int64)
    return np.concatenate(out_a), np.concatenate(out_b), np.concatenate(counts).astype(np.int64)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated aranges [starts[k], starts[k] + counts[k])."""
    total = int(counts.sum())
    offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    return np.arange(total) + offsets

"""A diagnostic classifier's inputs: per-snippet token vectors (checked as the structural
probes' are, `codeprobe.probes.structural.data.token_vectors`) and per-snippet class ids,
joined into one token axis (`LabelledTokens`), which training reads in batches of snippets.

The vectors keep their dtype (float16 caches stay float16, half the memory) and become float32
one batch at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from codeprobe.errors import InputError
from codeprobe.probes.structural.data import token_vectors


@dataclass(frozen=True, eq=False)
class LabelledTokens:
    """The tokens of m snippets, joined.

    Attributes:
        h: (S, N, hidden), every token's vectors at S hidden states, snippet after snippet.
        labels: int64 (N,), every token's class id.
        offsets: int64 (m + 1,): snippet k's tokens are [offsets[k], offsets[k + 1]).
    """

    h: np.ndarray
    labels: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def n_tokens(self) -> int:
        return int(self.labels.size)

    def token_index(self, snippets: np.ndarray) -> np.ndarray:
        """int64: the tokens of `snippets` (indices), snippet after snippet, in that order."""
        starts, stops = self.offsets[snippets], self.offsets[np.asarray(snippets) + 1]
        sizes = stops - starts
        # Each token's index is its snippet's start plus its rank inside the snippet.
        return np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(sizes.sum())

    def batch(self, snippets: np.ndarray, states: np.ndarray, device: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(float32 (k, T, hidden) vectors of hidden states `states`, int64 (T,) labels) of the
        tokens of `snippets`, on `device`."""
        tokens = self.token_index(snippets)
        h = self.h[states[:, None], tokens[None, :]] if states.size < self.h.shape[0] else self.h[:, tokens]
        return (
            torch.from_numpy(np.ascontiguousarray(h, dtype=np.float32)).to(device),
            torch.from_numpy(self.labels[tokens]).to(device),
        )

    def take(self, snippets: np.ndarray) -> LabelledTokens:
        """The snippets `snippets` (indices), in that order."""
        tokens = self.token_index(snippets)
        sizes = np.diff(self.offsets)[snippets]
        return LabelledTokens(self.h[:, tokens], self.labels[tokens], np.concatenate(([0], np.cumsum(sizes))))

    def prefix(self, n_tokens: int) -> LabelledTokens:
        """The first `n_tokens` tokens (the snippet they end in cut there)."""
        cut = np.minimum(self.offsets, n_tokens)
        offsets = cut[: int(np.searchsorted(cut, n_tokens, side="left")) + 1]
        return LabelledTokens(self.h[:, :n_tokens], self.labels[:n_tokens], offsets)


def labelled_tokens(X, y, *, stacked: bool, n_classes: int | None = None) -> LabelledTokens:
    """Check and join per-snippet token vectors and class ids.

    Args:
        X: m arrays, (n_k, hidden) each, or (L, n_k, hidden) with `stacked`.
        y: m int arrays (n_k,) of class ids (>= 0, and < n_classes when given).
        stacked: whether each snippet carries L hidden states.

    Raises:
        InputError: X as `codeprobe.probes.structural.data.token_vectors` rejects it (at least
            2 tokens per snippet, finite, one width); a number of label arrays other than the
            snippets'; a label array of another length than its snippet, not of integers, or
            with an id out of range. The message names the first snippet at fault.
    """
    vectors = token_vectors(X, stacked=stacked)
    if isinstance(y, (str, bytes)) or not isinstance(y, (Sequence, np.ndarray)):
        raise InputError(f"y must be a sequence of per-snippet class-id arrays, not {type(y).__name__}")
    if len(y) != len(vectors):
        raise InputError(f"{len(vectors)} snippets of token vectors but {len(y)} label arrays")
    labels = []
    for k, (ids, n) in enumerate(zip(y, vectors.lengths.tolist())):
        a = np.asarray(ids)
        if a.shape != (n,) or not np.issubdtype(a.dtype, np.integer):
            raise InputError(f"snippet {k}: labels must be {n} integer class ids, got {a.dtype} {a.shape}")
        if a.min() < 0 or (n_classes is not None and a.max() >= n_classes):
            high = "" if n_classes is None else f"..{n_classes - 1}"
            raise InputError(f"snippet {k}: class ids must lie in 0{high}, got {a.min()}..{a.max()}")
        labels.append(a.astype(np.int64))
    h = np.concatenate(vectors.arrays, axis=1)
    offsets = np.concatenate(([0], np.cumsum(vectors.lengths))).astype(np.int64)
    return LabelledTokens(h, np.concatenate(labels), offsets)

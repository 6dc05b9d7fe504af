"""Minimum description length probing by the online code (Voita & Titov, "Information-Theoretic
Probing with Minimum Description Length", EMNLP 2020, arXiv:2003.12298).

How many bits does it take to transmit a split's labels to someone who has its token vectors?
The examples are the training tokens, in a seeded order (the snippets shuffled, tokens in
source order within each), cut at the paper's timestamps `ONLINE_PORTIONS` (0.1, 0.2, 0.4, 0.8,
1.6, 3.2, 6.25, 12.5, 25, 50 and 100 % of the tokens) into blocks. The first block is sent with
the uniform code, log2 K bits per token; every later block with the code of a classifier trained
on all the blocks before it: sum over its tokens of -log2 p(y | h). Then

- online codelength = the first block's uniform bits + the sum of the later blocks' bits;
- uniform codelength = N log2 K (N training tokens, K classes);
- compression = uniform / online (1: the vectors tell nothing; larger: they help).

Each block's classifier is a `training.fit_classifiers` fit (all hidden states at once), its
epoch selected on the same validation snippets for every block. K is the vocabulary's size,
`OTHER` included. A timestamp whose token count (rounded, at least 1) repeats an earlier one is
dropped, so a small split has fewer blocks. Codelengths are in bits (the paper reports kbits).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codeprobe.errors import InputError
from codeprobe.probes.diagnostic.data import LabelledTokens, labelled_tokens
from codeprobe.probes.diagnostic.training import fit_classifiers, predict_log_proba
from codeprobe.probes.structural.config import StructuralTrainConfig

ONLINE_PORTIONS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0)
CHUNK = 8192  # tokens coded at once


@dataclass(frozen=True, eq=False)
class OnlineCode:
    """The online code of one task's training labels, for S hidden states.

    Attributes:
        boundaries: int64 (B + 1,): block b is tokens [boundaries[b], boundaries[b + 1]) of the
            ordered examples; boundaries[0] = 0, boundaries[-1] = N.
        block_bits: float64 (S, B), each block's codelength; block 0's is the uniform code's.
        n_classes: K.
    """

    boundaries: np.ndarray
    block_bits: np.ndarray
    n_classes: int

    @property
    def n_tokens(self) -> int:
        return int(self.boundaries[-1])

    @property
    def online_bits(self) -> np.ndarray:
        """float64 (S,): the online codelength of each hidden state, in bits."""
        return self.block_bits.sum(axis=1)

    @property
    def uniform_bits(self) -> float:
        """N log2 K."""
        return self.n_tokens * math.log2(self.n_classes)

    @property
    def compression(self) -> np.ndarray:
        """float64 (S,): uniform / online codelength."""
        return self.uniform_bits / self.online_bits

    def as_dict(self) -> dict:
        return {
            "boundaries": self.boundaries.tolist(),
            "block_bits": self.block_bits.tolist(),
            "n_classes": self.n_classes,
            "online_bits": self.online_bits.tolist(),
            "uniform_bits": self.uniform_bits,
            "compression": self.compression.tolist(),
        }


def block_boundaries(n_tokens: int, portions: Sequence[float] = ONLINE_PORTIONS) -> np.ndarray:
    """int64 (B + 1,): 0 and the token count of each timestamp, round(portion * n_tokens) but at
    least 1, repeats dropped (module docstring).

    Raises:
        InputError: portions not increasing in (0, 1] and ending at 1, or fewer than 2 tokens.
    """
    p = np.asarray(portions, dtype=np.float64)
    if p.ndim != 1 or p.size < 2 or p[-1] != 1.0 or not (np.diff(p) > 0).all() or p[0] <= 0:
        raise InputError(f"portions must increase within (0, 1] and end at 1, got {tuple(portions)}")
    if n_tokens < 2:
        raise InputError(f"an online code needs at least 2 training tokens, got {n_tokens}")
    counts = np.maximum(np.rint(p * n_tokens).astype(np.int64), 1)
    return np.concatenate(([0], np.unique(counts)))


def codelength(log_probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Bits to send `labels` with a model's code: sum over tokens of -log2 p(label).

    Args:
        log_probs: float (..., T, K), natural-log class probabilities of T tokens.
        labels: int (T,), their class ids.

    Returns:
        float64 (...), the codelength in bits.
    """
    log_probs = np.asarray(log_probs, dtype=np.float64)
    picked = log_probs[..., np.arange(labels.size), labels]
    return -picked.sum(-1) / math.log(2)


def online_code(
    X,
    y,
    *,
    X_valid,
    y_valid,
    n_classes: int,
    stacked: bool = True,
    portions: Sequence[float] = ONLINE_PORTIONS,
    config: StructuralTrainConfig = StructuralTrainConfig(),
    random_state: int = 0,
) -> OnlineCode:
    """The online codelength of labels y given token vectors X (module docstring).

    Args:
        X, y: the training snippets: per snippet token vectors, (L, n, hidden) with `stacked`
            (every hidden state, coded separately) or (n, hidden), and int class ids (n,).
        X_valid, y_valid: the snippets every block's classifier selects its epoch on.
        n_classes: K (>= 2), the class ids being 0..K - 1.
        portions: the timestamps, shares of the training tokens.
        config: each block classifier's training.
        random_state: seeds the examples' order and the training.

    Raises:
        InputError: inputs as `data.labelled_tokens` rejects them, bad portions, K < 2.
    """
    if n_classes < 2:
        raise InputError(f"an online code needs at least 2 classes, got {n_classes}")
    train = labelled_tokens(X, y, stacked=stacked, n_classes=n_classes)
    valid = labelled_tokens(X_valid, y_valid, stacked=stacked, n_classes=n_classes)
    train = train.take(np.random.default_rng(random_state).permutation(len(train)))
    bounds = block_boundaries(train.n_tokens, portions)
    bits = np.empty((train.h.shape[0], bounds.size - 1))
    bits[:, 0] = bounds[1] * math.log2(n_classes)
    for b in range(1, bounds.size - 1):
        coef, _ = fit_classifiers(
            train.prefix(int(bounds[b])), valid, n_classes, config=config, random_state=random_state
        )
        bits[:, b] = _block_bits(coef, train, int(bounds[b]), int(bounds[b + 1]))
    return OnlineCode(boundaries=bounds, block_bits=bits, n_classes=n_classes)


def _block_bits(coef: np.ndarray, train: LabelledTokens, start: int, stop: int) -> np.ndarray:
    """float64 (S,): the bits of tokens [start, stop) under the classifiers `coef`."""
    total = np.zeros(coef.shape[0])
    for a in range(start, stop, CHUNK):
        b = min(a + CHUNK, stop)
        total += codelength(predict_log_proba(coef, train.h[:, a:b]), train.labels[a:b])
    return total

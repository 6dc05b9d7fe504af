"""Baseline attention matrices, scored on the same samples, tokens and distances as the model.

The CAT-score rewards locality, so a number means little alone (spec: random ~0.12,
positional ~0.44). Both baselines are built over all aligned tokens of a sample and then cut
down to the kept tokens exactly like the model's attention.
"""

from __future__ import annotations

import hashlib

import numpy as np


def random_attention(n: int, random_state: int, sample_id: str) -> np.ndarray:
    """(n, n) float64 random row-stochastic attention: i.i.d. Uniform[0, 1) cells, each row
    divided by its sum (a softmax-like distribution; the score only sees its ranks).

    Seeded by (random_state, sample_id), so a sample's baseline does not depend on which other
    samples run, in which order, batch or shard.
    """
    key = int.from_bytes(hashlib.blake2b(str(sample_id).encode("utf-8"), digest_size=8).digest(), "little")
    rng = np.random.default_rng([int(random_state), key])
    a = rng.random((n, n))
    return a / a.sum(axis=1, keepdims=True)


def positional_attention(positions: np.ndarray) -> np.ndarray:
    """(n, n) float64 A[i, j] = exp(-|p_i - p_j|), p = the tokens' indices in the snippet's token
    sequence (so dropping tokens of other types keeps the gaps a position-only head would see).
    """
    p = np.asarray(positions, dtype=np.float64)
    return np.exp(-np.abs(p[:, None] - p[None, :]))

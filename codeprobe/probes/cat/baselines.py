"""Baseline attention matrices, scored on the same samples, tokens and distances as the model.

The CAT-score rewards locality, so a number means little alone (spec: random ~0.12,
positional ~0.44). Both baselines are built over all aligned tokens of a sample and then cut
down to the kept tokens exactly like the model's attention, and scored over the same cells
(`mask`, see `codeprobe.probes.cat.score`): under "causal" each is the attention a decoder head
of its kind could have, zero right of the diagonal, so that a decoder's number is compared with
baselines that share its mask.
"""

from __future__ import annotations

import hashlib

import numpy as np

from codeprobe.probes.cat.score import check_mask


def random_attention(n: int, random_state: int, sample_id: str, mask: str = "full") -> np.ndarray:
    """(n, n) float64 random row-stochastic attention: i.i.d. Uniform[0, 1) cells, each row
    divided by its sum (a softmax-like distribution; the score only sees its ranks). Under
    "causal" the cells right of the diagonal are zero before the rows are divided, so each row
    is a random distribution over the keys its query can attend to (row i's cells average
    1 / (i + 1), as an untrained decoder head's do).

    Seeded by (random_state, sample_id), so a sample's baseline does not depend on which other
    samples run, in which order, batch or shard; the draws are the same under either mask.
    """
    key = int.from_bytes(hashlib.blake2b(str(sample_id).encode("utf-8"), digest_size=8).digest(), "little")
    rng = np.random.default_rng([int(random_state), key])
    a = rng.random((n, n))
    if check_mask(mask, resolved=True) == "causal":
        a = np.tril(a)
    return a / a.sum(axis=1, keepdims=True)


def positional_attention(positions: np.ndarray, mask: str = "full") -> np.ndarray:
    """(n, n) float64 A[i, j] = exp(-|p_i - p_j|), p = the tokens' indices in the snippet's token
    sequence (so dropping tokens of other types keeps the gaps a position-only head would see);
    under "causal", zero where p_j > p_i (a decoder's position-only head). Not renormalised, as
    the spec's is not.
    """
    p = np.asarray(positions, dtype=np.float64)
    a = np.exp(-np.abs(p[:, None] - p[None, :]))
    return np.tril(a) if check_mask(mask, resolved=True) == "causal" else a

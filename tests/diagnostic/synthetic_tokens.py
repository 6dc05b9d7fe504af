"""Synthetic token vectors for the diagnostic classifiers' tests: per snippet, (L, n, hidden)
vectors whose hidden states carry a token's class with a given strength (0: pure noise) along
a fixed random direction per class, plus unit Gaussian noise."""

from __future__ import annotations

import numpy as np

CLASS_P = (0.5, 0.3, 0.2)  # a skewed distribution: the majority baseline is 0.5


def snippets(
    m: int,
    strengths: tuple[float, ...] = (0.0, 4.0),
    *,
    hidden: int = 12,
    labels: list[np.ndarray] | None = None,
    seed: int = 0,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(X, y): m snippets of 4..30 tokens with class ids drawn from `CLASS_P` (or `labels`, one
    array per snippet), X float32 (len(strengths), n, hidden) each."""
    rng = np.random.default_rng(seed)
    directions = np.random.default_rng(12345).normal(size=(16, hidden))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    X, y = [], []
    for k in range(m):
        ids = labels[k] if labels is not None else rng.choice(len(CLASS_P), size=int(rng.integers(4, 31)), p=CLASS_P)
        noise = rng.normal(size=(len(strengths), ids.size, hidden))
        signal = np.asarray(strengths)[:, None, None] * directions[ids][None]
        X.append((signal + noise).astype(np.float32))
        y.append(np.asarray(ids, dtype=np.int64))
    return X, y

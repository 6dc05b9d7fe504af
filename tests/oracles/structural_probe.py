"""Hewitt & Manning's structural-probe losses as their reference computes them (`probe.py`'s
TwoWordPSDProbe and OneWordPSDProbe, `loss.py`'s L1DistanceLoss and L1DepthLoss), re-derived in
numpy float64 for an oracle: a padded batch, every pair's difference vector projected and
squared (no Gram matrix), padding labelled -1 and masked out."""

from __future__ import annotations

import numpy as np


def _padded(vectors, labels, pairwise: bool):
    n = max(len(v) for v in vectors)
    h = np.zeros((len(vectors), n, vectors[0].shape[1]))
    gold = np.full((len(vectors), n, n) if pairwise else (len(vectors), n), -1.0)
    for k, (v, g) in enumerate(zip(vectors, labels)):
        h[k, : len(v)] = v
        if pairwise:
            gold[k, : len(v), : len(v)] = g
        else:
            gold[k, : len(v)] = g
    return h, gold, np.array([len(v) for v in vectors], dtype=np.float64)


def reference_distance_loss(vectors, distances, proj) -> float:
    """Mean over the snippets of sum_ij |d_ij - gold_ij| / n^2, d_ij = ||B (h_i - h_j)||^2."""
    h, gold, lengths = _padded(vectors, distances, pairwise=True)
    t = h @ proj
    predicted = ((t[:, :, None] - t[:, None, :]) ** 2).sum(-1)
    keep = gold != -1
    per_snippet = np.abs(predicted * keep - gold * keep).sum((1, 2)) / lengths**2
    return float(per_snippet.sum() / len(vectors))


def reference_depth_loss(vectors, depths, proj) -> float:
    """Mean over the snippets of sum_i |||B h_i||^2 - depth_i| / n."""
    h, gold, lengths = _padded(vectors, depths, pairwise=False)
    predicted = ((h @ proj) ** 2).sum(-1)
    keep = gold != -1
    per_snippet = np.abs(predicted * keep - gold * keep).sum(1) / lengths
    return float(per_snippet.sum() / len(vectors))

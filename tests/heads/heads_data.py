"""Synthetic snippets for the heads tests: random attention (with ties), random edges."""

from __future__ import annotations

import numpy as np

from codeprobe.probes.heads import EdgeArrays, HeadsSample

WORDS = ["if", "else", "x", "(", ")", "=", "for", "in", "y"]


def random_attention(rng, n_layers, n_heads, n, *, ties=False, causal=False):
    """(L, H, n, n) row-stochastic; with ties, weights on a coarse grid so many cells are equal."""
    a = (
        rng.integers(0, 4, size=(n_layers, n_heads, n, n)).astype(np.float64)
        if ties
        else rng.random((n_layers, n_heads, n, n))
    )
    if causal:
        a = a * np.tril(np.ones((n, n)))
    a[..., np.arange(n), np.arange(n)] += 0.25  # no all-zero row
    return a / a.sum(axis=-1, keepdims=True)


def random_edges(rng, n, count, n_relations=3):
    """Edges over n tokens with spans of 1..4 tokens anywhere (heads inside spans included)."""
    head = rng.integers(0, n, count)
    start = rng.integers(0, n, count)
    end = np.minimum(start + rng.integers(1, 5, count), n)
    return EdgeArrays.of(rng.integers(0, n_relations, count), head, start, end)


def make_samples(seed, count=6, n_layers=2, n_heads=3, *, ties=True, causal=False, n_relations=3):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        n = int(rng.integers(1, 14))
        tokens = list(rng.choice(WORDS, n))
        edges = random_edges(rng, n, int(rng.integers(0, 9)), n_relations)
        attention = random_attention(rng, n_layers, n_heads, n, ties=ties, causal=causal)
        out.append(HeadsSample(f"s{seed}-{i}", attention, edges, tokens))
    return out

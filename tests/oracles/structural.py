"""Reference structural-probe metrics: networkx's minimum spanning tree for UUAS, scipy's
`spearmanr` row by row for DSpr and NSpr, and per-length dictionaries for the macro average, as
Hewitt & Manning's reporter computes them."""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
from scipy.stats import spearmanr


def oracle_uuas(predicted, gold_heads) -> float:
    """Share of gold edges in networkx's minimum spanning tree of the complete graph weighted by
    the upper triangle of `predicted`."""
    n = len(gold_heads)
    graph = nx.Graph()
    graph.add_weighted_edges_from((i, j, float(predicted[i][j])) for i in range(n) for j in range(i + 1, n))
    tree = {frozenset(e) for e in nx.minimum_spanning_tree(graph).edges()}
    gold = {frozenset((t, int(h))) for t, h in enumerate(gold_heads) if h >= 0}
    return len(tree & gold) / len(gold)


def _rho(p, g) -> float | None:
    """spearmanr, with the metrics' conventions: None for a constant gold, 0 for a constant
    prediction."""
    if len(set(g)) < 2:
        return None
    if len(set(p)) < 2:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return float(spearmanr(p, g).statistic)


def oracle_dspr(predicted, gold, include_self: bool = False) -> float:
    rhos = []
    for i in range(len(gold)):
        keep = [j for j in range(len(gold)) if include_self or j != i]
        rho = _rho([predicted[i][j] for j in keep], [gold[i][j] for j in keep])
        if rho is not None:
            rhos.append(rho)
    return sum(rhos) / len(rhos)


def oracle_nspr(predicted_depth, gold_depth) -> float:
    return _rho(list(predicted_depth), list(gold_depth))


def oracle_macro_average(values, lengths, over) -> float:
    per_length: dict[int, list[float]] = {}
    for v, n in zip(values, lengths):
        per_length.setdefault(int(n), []).append(float(v))
    means = [np.mean(per_length[n]) for n in sorted(set(int(x) for x in over)) if n in per_length]
    return float(np.mean(means)) if means else float("nan")

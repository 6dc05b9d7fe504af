"""Range-maximum queries over a 1-D array: a sparse table, queried for many ranges at once."""

from __future__ import annotations

import numpy as np


def max_table(values: np.ndarray) -> list[np.ndarray]:
    """Sparse table: `table[k][i] = max(values[i : i + 2**k])`, O(n log n) memory."""
    table = [np.asarray(values)]
    while 2 ** len(table) <= table[0].size:
        prev, half = table[-1], 2 ** (len(table) - 1)
        table.append(np.maximum(prev[:-half], prev[half:]))
    return table


def range_max(table: list[np.ndarray], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max(values[lo[q] : hi[q] + 1]) for every query q (inclusive, non-empty ranges)."""
    length = hi - lo + 1
    level = np.floor(np.log2(np.maximum(length, 1))).astype(np.int64)
    out = np.empty(lo.shape, dtype=table[0].dtype)
    # Group queries by level: each level is one table row, two gathers.
    for k in np.unique(level):
        q = level == k
        row = table[int(k)]
        out[q] = np.maximum(row[lo[q]], row[hi[q] - (1 << int(k)) + 1])
    return out

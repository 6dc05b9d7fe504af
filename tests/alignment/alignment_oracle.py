"""Obviously-correct loop oracles for subword-to-token alignment (shared with tests/model)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class OracleAlignment:
    kept: list[int]  # token indices with >= 1 subword
    members: list[list[int]]  # subword indices of each kept token
    pooling: np.ndarray  # (len(kept), n_subwords) float64
    n_content: int
    n_unmatched: int
    n_without: int
    n_shared: int


def oracle_align(code, spans, starts, ends, special=None) -> OracleAlignment:
    """The CAT-probing rule spelled out with loops: [s, e) overlaps [a, b) iff s < b and a < e."""
    spans = [tuple(int(x) for x in span) for span in spans]
    starts, ends = [int(x) for x in starts], [int(x) for x in ends]
    m, n = len(spans), len(starts)
    content = [(special is None or not special[p]) and code[s:e].strip() != "" for p, (s, e) in enumerate(spans)]
    members_all = [
        [p for p in range(m) if content[p] and spans[p][0] < ends[i] and starts[i] < spans[p][1]] for i in range(n)
    ]
    kept = [i for i in range(n) if members_all[i]]
    pooling = np.zeros((len(kept), m))
    for row, i in enumerate(kept):
        for p in members_all[i]:
            pooling[row, p] = 1.0 / len(members_all[i])
    owners = [0] * m  # number of tokens each subword belongs to
    for i in range(n):
        for p in members_all[i]:
            owners[p] += 1
    return OracleAlignment(
        kept=kept,
        members=[members_all[i] for i in kept],
        pooling=pooling,
        n_content=sum(content),
        n_unmatched=sum(1 for p in range(m) if content[p] and owners[p] == 0),
        n_without=n - len(kept),
        n_shared=sum(1 for p in range(m) if owners[p] > 1),
    )


def oracle_cut(members: list[list[int]], n_subwords: int, budget: int) -> int:
    """Largest k <= budget that leaves every kept token wholly on one side of the cut."""
    if budget >= n_subwords:
        return n_subwords
    for k in range(budget, -1, -1):
        if all(max(s) < k or min(s) >= k for s in members):
            return k
    raise AssertionError("k = 0 always qualifies")


def assert_matches_oracle(al, oracle: OracleAlignment) -> None:
    assert al.tokens.tolist() == oracle.kept
    np.testing.assert_allclose(al.pooling, oracle.pooling, rtol=0, atol=1e-7)
    assert al.n_content_subwords == oracle.n_content
    assert al.n_unmatched_subwords == oracle.n_unmatched
    assert al.n_tokens_without_subword == oracle.n_without
    assert al.n_shared_subwords == oracle.n_shared
    assert [sorted(al.pair_subword[al.pair_token == r].tolist()) for r in range(al.n_kept)] == oracle.members

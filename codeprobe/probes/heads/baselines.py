"""Baselines for per-head relation scores: fixed offsets, offsets + keywords (CodeSyntax, Shen
et al. 2022, arXiv:2210.14473) and random attention.

Rule predictors. A predictor names one token for an attending token a (or none):
- offset o (o in +-1..max_offset): a + o, when inside the snippet (Clark et al. 2019's
  fixed-offset baseline; CodeSyntax's uses o = 1..512 to the right only, since their dependents
  follow their heads; we take both signs so the dep->head direction has one too);
- keyword w, next: the first token after a whose text is w; keyword w, previous: the last token
  before a whose text is w (CodeSyntax's keyword rule is "the next occurrence of keyword w after
  the head", over the language's reserved words; "previous" is its mirror for dep->head). The
  keyword list is the caller's (e.g. the grammar's reserved words), not hard-wired here.

Predictor order (`predictor_names`): offsets by distance, right before left (+1, -1, +2, -2, ...),
then per keyword its next and previous rule. A predictor hits an edge under a score of
`codeprobe.probes.heads.score.SCORES` when its token is that score's target (first/last token,
or any token of the span; the head token for dep->head), on scorable edges only.

Top-k of a rule baseline (CodeSyntax's `get_baseline_topk_scores`): k predictors chosen greedily
on validation, each adding the most edges not yet hit (ties: the earlier predictor); an edge is a
hit@k when any of the k predicts its target. For k = 1 that is the single best offset. The
offset + keyword baseline is, per relation and k, the better on validation of the greedy offset
set and the greedy keyword set (CodeSyntax's "max of the two").

Random attention: i.i.d. Uniform[0, 1) cells over each row's candidates (for `causal`, the tokens
at or left of the attending one), rows normalised to sum 1 (as `codeprobe.probes.cat`'s), drawn
for every layer and head so that its best head is chosen the same way as the model's.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from codeprobe.probes.heads.edges import EdgeArrays
from codeprobe.probes.heads.score import scorable

DEFAULT_MAX_OFFSET = 10


def offsets(max_offset: int) -> np.ndarray:
    """int64 (2 * max_offset,): +1, -1, +2, -2, ..., +max_offset, -max_offset."""
    o = np.arange(1, int(max_offset) + 1)
    return np.stack([o, -o], axis=1).ravel()


def predictor_names(max_offset: int, keywords: Sequence[str]) -> list[str]:
    """The names of the predictors in order: "+1", "-1", ..., then "next:w", "prev:w" per keyword."""
    names = [f"{o:+d}" for o in offsets(max_offset)]
    for w in keywords:
        names += [f"next:{w}", f"prev:{w}"]
    return names


def keyword_targets(tokens: Sequence[str] | None, keywords: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """int64 (W, n) each: for keyword w and token i, the first token after i whose text is w, and
    the last one before i (-1: none). No tokens: no keyword fires."""
    n_kw = len(keywords)
    if tokens is None or n_kw == 0 or n == 0:
        none = np.full((n_kw, n), -1, dtype=np.int64)
        return none, none.copy()
    # Each token's keyword as an id (a dict lookup per token, not a text comparison per keyword).
    vocabulary = {w: i for i, w in enumerate(dict.fromkeys(keywords))}
    word = np.fromiter((vocabulary.get(t, -1) for t in tokens), dtype=np.int64, count=n)
    is_w = word[None, :] == np.array([vocabulary[w] for w in keywords])[:, None]
    idx = np.arange(n)
    at_or_after = np.minimum.accumulate(np.where(is_w, idx, n)[:, ::-1], axis=1)[:, ::-1]
    at_or_before = np.maximum.accumulate(np.where(is_w, idx, -1), axis=1)
    nxt = np.full((n_kw, n), -1, dtype=np.int64)
    prv = np.full((n_kw, n), -1, dtype=np.int64)
    nxt[:, :-1] = np.where(at_or_after[:, 1:] < n, at_or_after[:, 1:], -1)
    prv[:, 1:] = at_or_before[:, :-1]
    return nxt, prv


def predictions(
    attending: np.ndarray, n: int, *, max_offset: int, next_kw: np.ndarray, prev_kw: np.ndarray
) -> np.ndarray:
    """int64 (P, E): each predictor's token for each attending token (-1: none)."""
    a = np.asarray(attending, dtype=np.int64)
    p = a[None, :] + offsets(max_offset)[:, None]
    p = np.where((p >= 0) & (p < n), p, -1)
    kw = np.stack([next_kw[:, a], prev_kw[:, a]], axis=1).reshape(2 * next_kw.shape[0], a.size)  # next, prev
    return np.concatenate([p, kw], axis=0)


def rule_hits(
    edges: EdgeArrays,
    n: int,
    tokens: Sequence[str] | None,
    *,
    max_offset: int = DEFAULT_MAX_OFFSET,
    keywords: Sequence[str] = (),
    causal: bool = False,
    exclude_self: bool = True,
) -> np.ndarray:
    """bool (4, P, E): whether each rule predictor hits each edge under each of `SCORES`
    (False where the edge is not scorable), P = len(predictor_names(max_offset, keywords))."""
    h, s, e = edges.head, edges.dep_start, edges.dep_end
    next_kw, prev_kw = keyword_targets(tokens, keywords, n)
    both = predictions(np.concatenate([h, s]), n, max_offset=max_offset, next_kw=next_kw, prev_kw=prev_kw)
    from_head, from_dep = both[:, : h.size], both[:, h.size :]
    # Built edge-major, (E, 4, P) in memory (the array returned is a view in the documented
    # order), so that a caller's per-edge bits are contiguous.
    from_head, from_dep = from_head.T, from_dep.T
    s, e = s[:, None], e[:, None]
    out = np.stack(
        [from_head == s, (from_head >= s) & (from_head < e), from_head == e - 1, from_dep == h[:, None]], axis=1
    )
    out &= scorable(edges, causal=causal, exclude_self=exclude_self).T[:, :, None]
    return np.moveaxis(out, 0, -1)


def greedy_predictors(hits: np.ndarray, k: int, candidates: np.ndarray) -> list[int]:
    """CodeSyntax's greedy top-k rule set: k predictor indices among `candidates`, each adding
    the most not-yet-hit edges (ties: the earlier predictor). hits: bool (P, E)."""
    covered = np.zeros(hits.shape[1], dtype=bool)
    chosen: list[int] = []
    pool = [int(c) for c in candidates]
    for _ in range(min(k, len(pool))):
        gains = (hits[pool] & ~covered).sum(axis=1)
        best = pool.pop(int(np.argmax(gains)))
        chosen.append(best)
        covered |= hits[best]
    return chosen


def sample_key(sample_id: str) -> int:
    """A stable 64-bit key of a sample id, to seed its random baseline."""
    return int.from_bytes(hashlib.blake2b(str(sample_id).encode("utf-8"), digest_size=8).digest(), "little")


def random_rows(
    n_heads_total: int,
    attending: np.ndarray,
    n: int,
    *,
    random_state: int,
    sample_id: str,
    causal: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """float32 (G, R, n): random attention rows of G heads for the attending tokens only.

    Seeded by (random_state, sample_id): a sample's draws do not depend on other samples, their
    order or shards (they depend on its own edges, which fix the rows drawn). The cells are
    numpy's float32 uniforms, `default_rng([random_state, sample_key(sample_id)]).random(shape,
    dtype=np.float32)`, bit for bit: the top 24 bits of each 32-bit half (low half first) of
    PCG64's 64-bit outputs, times 2**-24, made here from the outputs in bulk (numpy draws them a
    call per cell), then each row divided by its float32 sum.

    out: where to put the rows (float, C order, (G, R, n)), then returned; they are drawn and
    normalised in float32 whatever its type.
    """
    shape = (int(n_heads_total), np.size(attending), int(n))
    size = math.prod(shape)
    rng = np.random.default_rng([int(random_state), sample_key(sample_id)])
    raw = rng.integers(0, 2**64, size=(size + 1) // 2, dtype=np.uint64)  # the raw outputs (faster than random_raw)
    halves = raw.view(np.uint32)[:size]  # on a little-endian machine: low half, then high half
    a = out if out is not None and out.dtype == np.float32 else np.empty(shape, dtype=np.float32)
    # The 24-bit integers themselves: their row sums and quotients are those of the uniforms
    # (2**-24 times them) exactly, so the scaling is left out.
    a[...] = np.right_shift(halves, 8, out=halves).reshape(shape)
    if causal:
        a[:, np.arange(n)[None, :] > np.asarray(attending)[:, None]] = 0.0
    total = a.sum(axis=-1, keepdims=True)
    a /= np.where(total > 0, total, np.float32(1.0))  # a row of zeros stays zeros
    if out is not None and a is not out:
        out[...] = a
    return a if out is None else out

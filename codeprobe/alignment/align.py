"""Align a tokenizer's subwords to code tokens by character offsets.

Both sides are plain arrays of character offsets into the same `str` (the source the model saw),
so this module needs neither a tokenizer nor a syntax tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from codeprobe.errors import AlignmentError

# Every code point for which str.isspace() holds; the highest is U+3000 (ideographic space).
_WHITESPACE = np.array([c for c in range(0x3001) if chr(c).isspace()], dtype=np.uint32)


def _non_whitespace_prefix(code: str) -> np.ndarray:
    """int64 (len(code) + 1,): number of non-whitespace characters before each offset."""
    # UTF-32 gives one fixed-width unit per Python character, so offsets stay character offsets;
    # surrogatepass keeps lone surrogates (legal in a str) from raising.
    points = np.frombuffer(code.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    out = np.zeros(points.shape[0] + 1, dtype=np.int64)
    np.cumsum(~np.isin(points, _WHITESPACE), out=out[1:])
    return out


@dataclass(frozen=True, eq=False)
class Alignment:
    """Subword-to-token alignment of one snippet.

    Memberships are stored sparsely as (kept-token row, subword column) pairs, sorted by subword;
    `pooling` gives the dense matrix W.

    Attributes:
        tokens: int64 (k,), indices (into the code tokens given) of the kept tokens, i.e. those
            with at least one subword; increasing.
        pair_token: int64 (p,), row 0..k-1 of each membership.
        pair_subword: int64 (p,), subword index 0..n_subwords-1 of each membership.
        n_subwords: length of the subword sequence given (ignored subwords included).
        n_tokens: number of code tokens given.
        n_content_subwords: subwords that are not special, empty or whitespace-only.
        n_unmatched_subwords: content subwords that overlap no token (e.g. inside comments).
        n_tokens_without_subword: tokens no content subword overlaps (dropped).
        n_shared_subwords: subwords that belong to more than one token (e.g. `):`).
    """

    tokens: np.ndarray
    pair_token: np.ndarray
    pair_subword: np.ndarray
    n_subwords: int
    n_tokens: int
    n_content_subwords: int
    n_unmatched_subwords: int
    n_tokens_without_subword: int
    n_shared_subwords: int

    @property
    def n_kept(self) -> int:
        """Number of kept tokens (rows of W)."""
        return int(self.tokens.shape[0])

    @cached_property
    def sizes(self) -> np.ndarray:
        """int64 (k,): number of subwords |S_i| of each kept token."""
        return np.bincount(self.pair_token, minlength=self.n_kept)

    @cached_property
    def weights(self) -> np.ndarray:
        """float32 (p,): the value 1 / |S_i| of W at each membership."""
        return (1.0 / self.sizes[self.pair_token]).astype(np.float32)

    @cached_property
    def first_subword(self) -> np.ndarray:
        """int64 (k,): smallest subword index of each kept token."""
        out = np.full(self.n_kept, self.n_subwords, dtype=np.int64)
        np.minimum.at(out, self.pair_token, self.pair_subword)
        return out

    @cached_property
    def last_subword(self) -> np.ndarray:
        """int64 (k,): largest subword index of each kept token."""
        out = np.full(self.n_kept, -1, dtype=np.int64)
        np.maximum.at(out, self.pair_token, self.pair_subword)
        return out

    @cached_property
    def pooling(self) -> np.ndarray:
        """float32 (k, n_subwords): W with W[i, p] = 1/|S_i| for p in S_i, else 0.

        Token attention = W A W^T (the block mean over subword pairs), token hidden states = W H.
        """
        w = np.zeros((self.n_kept, self.n_subwords), dtype=np.float32)
        w[self.pair_token, self.pair_subword] = self.weights
        return w


def align(
    code: str,
    subword_spans: np.ndarray,
    token_starts: np.ndarray,
    token_ends: np.ndarray,
    *,
    special: np.ndarray | None = None,
) -> Alignment:
    """Align subwords to code tokens by character overlap.

    Args:
        code: the source text both offset sets refer to.
        subword_spans: int (m, 2), each subword's [start, end) character offsets into `code`
            (a fast tokenizer's `offset_mapping`).
        token_starts, token_ends: int (n,), each code token's [start, end) character offsets;
            both non-decreasing (tokens in source order, not nested).
        special: optional bool (m,), subwords to ignore besides empty and whitespace-only ones
            (e.g. a tokenizer's `special_tokens_mask`).

    Returns:
        Alignment; see its attributes for the counts.

    Raises:
        AlignmentError: offsets out of range, shapes that disagree, or tokens out of order.
    """
    spans = np.asarray(subword_spans, dtype=np.int64).reshape(-1, 2)
    starts = np.asarray(token_starts, dtype=np.int64).reshape(-1)
    ends = np.asarray(token_ends, dtype=np.int64).reshape(-1)
    n_chars = len(code)
    m, n = spans.shape[0], starts.shape[0]
    s, e = spans[:, 0], spans[:, 1]
    if ends.shape[0] != n:
        raise AlignmentError(f"{n} token starts but {ends.shape[0]} token ends")
    if m and (s.min() < 0 or e.max() > n_chars or np.any(e < s)):
        raise AlignmentError(f"subword offsets outside [0, {n_chars}] or with end < start")
    if n and (starts.min() < 0 or ends.max() > n_chars or np.any(ends < starts)):
        raise AlignmentError(f"token offsets outside [0, {n_chars}] or with end < start")
    if np.any(np.diff(starts) < 0) or np.any(np.diff(ends) < 0):
        raise AlignmentError("code tokens must be in source order and not nested")

    nonws = _non_whitespace_prefix(code)
    content = nonws[e] > nonws[s]  # excludes empty and whitespace-only spans
    if special is not None:
        special = np.asarray(special, dtype=bool).reshape(-1)
        if special.shape[0] != m:
            raise AlignmentError(f"special mask has {special.shape[0]} entries for {m} subwords")
        content &= ~special

    # Both token bounds are non-decreasing, so the tokens overlapping [s, e) form one index
    # range: those with end > s (from `lo` on) and start < e (before `hi`).
    lo = np.searchsorted(ends, s, side="right")
    hi = np.searchsorted(starts, e, side="left")
    count = np.where(content, np.maximum(hi - lo, 0), 0)
    total = int(count.sum())
    pair_subword = np.repeat(np.arange(m, dtype=np.int64), count)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    pair_token_all = np.repeat(lo, count) + within

    size = np.bincount(pair_token_all, minlength=n)
    has = size > 0
    rank = np.cumsum(has) - 1
    return Alignment(
        tokens=np.flatnonzero(has).astype(np.int64),
        pair_token=rank[pair_token_all].astype(np.int64),
        pair_subword=pair_subword,
        n_subwords=m,
        n_tokens=n,
        n_content_subwords=int(content.sum()),
        n_unmatched_subwords=int((content & (count == 0)).sum()),
        n_tokens_without_subword=int(n - has.sum()),
        n_shared_subwords=int((count > 1).sum()),
    )


def token_boundary_cut(alignment: Alignment, budget: int) -> int:
    """Largest k <= budget such that cutting the subwords to [0, k) splits no kept token.

    A token whose subwords lie on both sides of the cut would keep only part of its text, so
    truncation backs off to the previous token boundary. Tokens sharing a subword chain
    together, so one long chain can move the cut back past several tokens.

    Returns:
        The number of subwords to keep (n_subwords when budget >= n_subwords; may be 0).
    """
    n = alignment.n_subwords
    if budget >= n:
        return n
    if budget < 0:
        raise AlignmentError(f"budget must be >= 0, got {budget}")
    # Position k splits token i iff first_i < k <= last_i: mark those ranges with a difference array.
    diff = np.zeros(n + 2, dtype=np.int64)
    np.add.at(diff, alignment.first_subword + 1, 1)
    np.add.at(diff, alignment.last_subword + 1, -1)
    splits = np.cumsum(diff[: budget + 1]) > 0
    return int(np.flatnonzero(~splits)[-1])

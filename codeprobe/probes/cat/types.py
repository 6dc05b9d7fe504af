"""Frequent token types: the rate table and the three named selection strategies.

Spec "Frequent token types": for each type t, over samples c with n_c aligned tokens and the
per-sample, per-layer threshold q_c = q-quantile of A_c,
    num(t) = sum_{c,i,j} [type_i = t] + [type_j = t]          (= sum_c 2 n_c count_c(t))
    hit(t) = the same sum over cells with A_c[i, j] > q_c
t is eligible when num(t) > sum_c n_c, and rate(t) = hit(t) / num(t).
Under the causal convention (`codeprobe.probes.cat.score`) every sum runs over the scored
cells, the pairs j <= i, and q_c is their quantile: a token has n_c + 1 cells (its row up to
the diagonal, its column from it, the diagonal twice, as the full count has 2 n_c), so
num(t) = sum_c (n_c + 1) count_c(t), and the bar of eligibility, half a token's cells per
sample summed over the samples (sum_c n_c under the full count), is sum_c (n_c + 1) / 2.
Strategies: `paper` (fixed per-language lists), `topk` (top-k eligible types by rate, per layer),
`all` (no filtering).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codeprobe.errors import InputError
from codeprobe.probes.cat.score import DEFAULT_QUANTILE, attention_thresholds, check_mask, check_quantile

STRATEGIES = ("paper", "topk", "all")
DEFAULT_TOP_K = 8

# The lists behind the paper's figures (model independent). With tree-sitter-java 0.23
# `string_literal` is no longer a leaf, so the Java list effectively loses it.
PAPER_TYPES: dict[str, tuple[str, ...]] = {
    "javascript": ("function", ")", "(", "{", "string_fragment", ";", "identifier", ","),
    "go": ("package_identifier", "if", "=", "return", "type_identifier", ":", '"', "field_identifier"),
    "java": ("public", "string_literal", "{", ";", "return", "=", "}", ",", ")"),
    "python": ("]", "def", ")", "for", "identifier", ":", "if", "return", "(", "=", ","),
}


def check_strategy(strategy: str, language: str | None) -> str:
    """Validate a strategy name; `paper` needs a language with a list in PAPER_TYPES."""
    if strategy not in STRATEGIES:
        raise InputError(f"unknown type strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if strategy == "paper" and language not in PAPER_TYPES:
        raise InputError(
            f"the paper has no frequent-type list for language {language!r} "
            f"(it has {', '.join(sorted(PAPER_TYPES))}); use --types topk or all"
        )
    return strategy


def default_strategy(language: str) -> str:
    """`paper` where the spec has a list for the language, else `all`."""
    return "paper" if language in PAPER_TYPES else "all"


@dataclass(frozen=True)
class TypeRates:
    """The frequent-type rate table, per layer.

    types: (T,) type names, in order of first appearance.
    num: (T,) int64 cell counts num(t) (layer independent).
    hit: (L, T) int64 cell counts hit(t) per layer (from head-mean attention).
    total_tokens: sum_c n_c over the samples accumulated; n_samples: how many.
    quantile: q used for q_c.
    mask: the cells counted, "full" or "causal" (see the module doc).
    """

    types: tuple[str, ...]
    num: np.ndarray
    hit: np.ndarray
    total_tokens: int
    n_samples: int
    quantile: float
    mask: str = "full"

    @classmethod
    def merged(cls, parts: Sequence[TypeRates]) -> TypeRates:
        """The table of the parts' samples together (counts add up; types in order of first
        appearance, part after part): what one `TypeRateAccumulator` over all their samples,
        in the same order, gives.

        Raises:
            InputError: no parts, or parts of different quantiles, masks or layer counts.
        """
        if not parts or len({(p.quantile, p.mask) for p in parts}) != 1:
            raise InputError("rate tables merge only with the same quantile and mask (and at least one)")
        filled = [p for p in parts if p.n_samples]
        if len({p.n_layers for p in filled}) > 1:
            raise InputError(f"rate tables of different layer counts: {sorted({p.n_layers for p in filled})}")
        index: dict[str, int] = {}
        for p in filled:
            for t in p.types:
                index.setdefault(t, len(index))
        num = np.zeros(len(index), np.int64)
        hit = np.zeros((filled[0].n_layers if filled else 0, len(index)), np.int64)
        for p in filled:
            ids = np.fromiter((index[t] for t in p.types), np.int64, len(p.types))
            num[ids] += p.num
            hit[:, ids] += p.hit
        return cls(
            tuple(index),
            num,
            hit,
            sum(p.total_tokens for p in parts),
            sum(p.n_samples for p in parts),
            parts[0].quantile,
            parts[0].mask,
        )

    @property
    def n_layers(self) -> int:
        return int(self.hit.shape[0])

    @property
    def rate(self) -> np.ndarray:
        """(L, T) float64 hit(t) / num(t); NaN for a type never seen (num = 0)."""
        num = self.num.astype(np.float64)
        return np.where(num > 0, self.hit / np.maximum(num, 1.0), np.nan)

    @property
    def eligible(self) -> np.ndarray:
        """(T,) bool: num(t) > sum_c n_c (full), num(t) > sum_c (n_c + 1) / 2 (causal)."""
        if self.mask == "causal":
            return 2 * self.num > self.total_tokens + self.n_samples  # in integers: no rounding
        return self.num > self.total_tokens

    def ranking(self, layer: int) -> list[str]:
        """Eligible types of `layer` by decreasing rate; ties broken by type name."""
        rate = self.rate[layer]
        order = sorted(np.flatnonzero(self.eligible), key=lambda t: (-rate[t], self.types[t]))
        return [self.types[t] for t in order]

    def top_k(self, k: int = DEFAULT_TOP_K) -> list[frozenset[str]]:
        """Per layer, the k eligible types of highest rate (fewer if fewer are eligible)."""
        return [frozenset(self.ranking(layer)[:k]) for layer in range(self.n_layers)]

    def rows(self) -> dict[str, np.ndarray]:
        """Long table, one row per (layer, type): layer, type, num, hit, rate, eligible, rank
        (1-based among eligible types of that layer by rate; 0 when not eligible)."""
        n_t = len(self.types)
        layer = np.repeat(np.arange(self.n_layers, dtype=np.int32), n_t)
        rank = np.zeros((self.n_layers, n_t), dtype=np.int32)
        index = {t: i for i, t in enumerate(self.types)}
        for ell in range(self.n_layers):
            for r, t in enumerate(self.ranking(ell), start=1):
                rank[ell, index[t]] = r
        return {
            "layer": layer,
            "type": np.tile(np.array(self.types, dtype=object), self.n_layers),
            "num": np.tile(self.num, self.n_layers),
            "hit": self.hit.ravel(),
            "rate": self.rate.ravel(),
            "eligible": np.tile(self.eligible, self.n_layers),
            "rank": rank.ravel(),
        }

    def to_arrow(self):
        """The `rows()` table as a pyarrow.Table."""
        import pyarrow as pa

        return pa.table({k: pa.array(list(v) if v.dtype == object else v) for k, v in self.rows().items()})

    def format(self, layer: int, limit: int | None = 20) -> str:
        """A printable table of the types of one layer: eligible ones by rate, then the rest by
        num; at most `limit` rows."""
        rate, elig = self.rate[layer], self.eligible
        index = {t: i for i, t in enumerate(self.types)}
        rest = sorted((t for t, e in zip(self.types, elig) if not e), key=lambda t: (-self.num[index[t]], t))
        order = self.ranking(layer) + rest
        lines = [
            f"layer {layer}: {self.n_samples} samples, sum n_c = {self.total_tokens}, q = {self.quantile}",
            f"{'rank':>4}  {'type':<24} {'num':>10} {'hit':>10} {'rate':>7}  eligible",
        ]
        for r, t in enumerate(order[:limit], start=1):
            i = index[t]
            lines.append(
                f"{(str(r) if elig[i] else '-'):>4}  {t:<24} {self.num[i]:>10} {self.hit[layer, i]:>10} "
                f"{rate[i]:>7.4f}  {'yes' if elig[i] else 'no'}"
            )
        if limit is not None and len(order) > limit:
            lines.append(f"... {len(order) - limit} more")
        return "\n".join(lines)


def token_hits(attention: np.ndarray, quantile: float, mask: str = "full") -> np.ndarray:
    """int64 (L, n): per layer, the scored cells of each token's row plus those of its column
    that are in M_A (attention (L, n, n) above the q-quantile of its scored cells; `mask` as in
    `codeprobe.probes.cat.score`): the token's contribution to hit(t)."""
    a = np.asarray(attention)
    if a.shape[-1] == 0:
        return np.zeros(a.shape[:2], np.int64)
    strong = a > attention_thresholds(a, quantile, mask=mask)[:, None, None]  # compared in float64
    if mask == "causal":
        strong &= np.tri(a.shape[-1], dtype=bool)  # only the pairs j <= i are cells
    return strong.sum(axis=2) + strong.sum(axis=1)


class TypeRateAccumulator:
    """Streams samples into num(t) and hit(t); `result()` gives the `TypeRates` table. `mask`:
    the cells counted, "full" or "causal" (see the module doc)."""

    def __init__(self, quantile: float = DEFAULT_QUANTILE, mask: str = "full"):
        self.quantile = check_quantile(quantile)
        self.mask = check_mask(mask, resolved=True)
        self._index: dict[str, int] = {}
        self._num = np.zeros(0, dtype=np.int64)
        self._hit: np.ndarray | None = None  # (L, T), allocated at the first sample
        self._total = 0
        self._count = 0

    def type_ids(self, types: Sequence[str]) -> np.ndarray:
        """(n,) int64 ids of `types`, registering new names (the table grows as needed)."""
        ids = np.fromiter((self._index.setdefault(t, len(self._index)) for t in types), np.int64, len(types))
        grow = len(self._index) - self._num.size
        if grow > 0:
            self._num = np.concatenate([self._num, np.zeros(grow, np.int64)])
            if self._hit is not None:
                self._hit = np.concatenate([self._hit, np.zeros((self._hit.shape[0], grow), np.int64)], axis=1)
        return ids

    def update(self, types: Sequence[str], attention: np.ndarray) -> None:
        """Add one sample.

        types: (n,) type names of its aligned tokens; attention: (L, n, n) head-mean token
        attention over the same tokens (all aligned tokens, before any type filtering).
        """
        a = np.asarray(attention)
        n = len(types)
        if a.ndim != 3 or a.shape[1:] != (n, n):
            raise InputError(f"attention must be (n_layers, {n}, {n}), got {a.shape}")
        self.add(types, token_hits(a, self.quantile, self.mask))

    def add(self, types: Sequence[str], hits: np.ndarray) -> None:
        """Add one sample from its `token_hits` (L, n), e.g. computed on another thread."""
        n, n_layers = len(types), hits.shape[0]
        if hits.shape[1] != n:
            raise InputError(f"hits must be (n_layers, {n}), got {hits.shape}")
        if self._hit is None:
            self._hit = np.zeros((n_layers, self._num.size), np.int64)
        elif n_layers != self._hit.shape[0]:
            raise InputError(f"all samples need {self._hit.shape[0]} layers, got {n_layers}")
        ids = self.type_ids(types)
        n_t = self._num.size
        cells = n + 1 if self.mask == "causal" else 2 * n  # a token's cells: its row plus its column
        self._num += cells * np.bincount(ids, minlength=n_t)
        if n:
            flat = (np.arange(n_layers)[:, None] * n_t + ids[None, :]).ravel()
            self._hit += (
                np.bincount(flat, weights=hits.ravel(), minlength=n_layers * n_t)
                .reshape(n_layers, n_t)
                .astype(np.int64)
            )
        self._total += n
        self._count += 1

    @classmethod
    def from_table(cls, table: TypeRates) -> TypeRateAccumulator:
        """An accumulator holding `table`'s counts, as the one that made it did: further samples
        and merges go on from there."""
        acc = cls(table.quantile, table.mask)
        acc._index = {t: i for i, t in enumerate(table.types)}
        acc._num = np.array(table.num, dtype=np.int64)
        acc._hit = np.array(table.hit, dtype=np.int64) if table.n_samples else None
        acc._total, acc._count = int(table.total_tokens), int(table.n_samples)
        return acc

    def merge(self, other: TypeRateAccumulator) -> TypeRateAccumulator:
        """Add `other`'s samples after this one's (`TypeRates.merged`: the same table as one
        accumulator over both, in that order); `other` is left as it was. Returns self."""
        merged = type(self).from_table(TypeRates.merged([self.result(), other.result()]))
        self._index, self._num, self._hit = merged._index, merged._num, merged._hit
        self._total, self._count = merged._total, merged._count
        return self

    def result(self) -> TypeRates:
        """The table so far (a snapshot; further updates do not change it)."""
        hit = self._hit if self._hit is not None else np.zeros((0, self._num.size), np.int64)
        return TypeRates(
            types=tuple(self._index),
            num=self._num.copy(),
            hit=hit.copy(),
            total_tokens=self._total,
            n_samples=self._count,
            quantile=self.quantile,
            mask=self.mask,
        )


def select_types(
    strategy: str,
    *,
    language: str | None,
    rates: TypeRates | None = None,
    n_layers: int,
    top_k: int = DEFAULT_TOP_K,
) -> list[frozenset[str] | None]:
    """Per layer, the set of kept types (None = keep all) under a named strategy.

    `topk` needs the rate table of the whole dataset (`rates`).
    """
    check_strategy(strategy, language)
    if strategy == "all":
        return [None] * n_layers
    if strategy == "paper":
        return [frozenset(PAPER_TYPES[language])] * n_layers
    if rates is None:
        raise InputError("the topk strategy needs the rate table of the dataset")
    return rates.top_k(top_k)

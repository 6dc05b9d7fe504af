"""The streaming heads scorer: a dataset's per-head relation scores built snippet by snippet,
merged across parts of the data, and saved to and restored from flat arrays.

    acc = HeadsAccumulator(ks=(1, 3, 10), causal=False, keywords=("if", "else", ...))
    acc.extend(samples)                     # HeadsSample's, or acc.add(sample) one at a time
    acc.merge(other)                        # another part's snippets, after these
    arrays = acc.to_arrays(); HeadsAccumulator.from_arrays(arrays)
    totals = acc.totals()                   # pooled per relation, layer and head
    result = evaluate(validation_acc, test_acc)   # codeprobe.probes.heads.results

What is kept, so that a bootstrap over snippets is possible after any split of the data:
- per (snippet, relation): its edges, its scorable edges per score, the model's top-k hits per
  score, k, layer and head (uint16 counts) and its SAS sums (float64); the same for the random
  attention baseline (`random_baseline`);
- per edge: its snippet, relation and which rule predictors (offsets, keywords) hit it, as bits
  (the greedy rule sets of `codeprobe.probes.heads.baselines` are unions, which counts alone
  cannot give).

A scored snippet costs O(G * R * n) for G = L*H heads and R attending tokens (the rows at head
tokens and dependents' first tokens only are read); the random baseline draws the same number
of cells.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codeprobe.errors import InputError
from codeprobe.prefetch import threaded_map
from codeprobe.probes.heads.baselines import DEFAULT_MAX_OFFSET, predictor_names, random_rows, rule_hits
from codeprobe.probes.heads.edges import HeadsSample
from codeprobe.probes.heads.score import (
    DEFAULT_KS,
    SAS_DIRECTIONS,
    SCORES,
    attending_positions,
    check_ks,
    score_rows,
)

FORMAT = 1
_MAX_COUNT = np.iinfo(np.uint16).max

# The per-(snippet, relation) tables and the per-edge tables, by their array names.
_Q_TABLES = ("q_sample", "q_relation", "q_edges", "q_scorable", "q_hits", "q_sas", "q_random_hits", "q_random_sas")
_E_TABLES = ("e_sample", "e_relation", "e_rules")


@dataclass(frozen=True)
class SampleTables:
    """One snippet's rows (`HeadsAccumulator.first_pass`), `q_sample`/`e_sample` still 0.

    tables: the arrays named in the scorer's layout (see `HeadsAccumulator.to_arrays`);
    shape: (L, H); key: the settings of the accumulator that made it.
    """

    sample_id: str
    shape: tuple[int, int]
    tables: dict[str, np.ndarray]
    key: tuple

    def relabelled(self, codes: np.ndarray) -> SampleTables:
        """The same rows with relation code c renamed `codes[c]` (-1: its rows dropped); e.g.
        a snippet's own relation codes moved into a dataset's vocabulary."""
        return SampleTables(self.sample_id, self.shape, _relabel(self.tables, codes), self.key)


def _relabel(tables: dict[str, np.ndarray], codes: np.ndarray) -> dict[str, np.ndarray]:
    """`tables` with relation code c renamed `codes[c]`, the rows of codes mapped to -1 dropped.

    Raises:
        InputError: a code outside `codes`.
    """
    codes = np.asarray(codes, dtype=np.int64)
    out = {}
    for prefix in ("q_", "e_"):
        old = tables[prefix + "relation"]
        if old.size and (old.min() < 0 or old.max() >= codes.size):
            raise InputError(f"relation codes up to {int(old.max())}, relabelling covers {codes.size}")
        new = codes[old]
        keep = new >= 0
        for name, x in tables.items():
            if name.startswith(prefix):
                out[name] = new[keep] if name == prefix + "relation" else x[keep]
    return out


@dataclass(frozen=True)
class RelationTotals:
    """Scores pooled over a set of snippets, per relation (R relations present, sorted codes).

    Attributes:
        relations: int64 (R,) codes; edges, samples: int64 (R,) edges and snippets with one.
        scorable: int64 (R, 4) scorable edges per `SCORES` index.
        hits: int64 (R, 4, K, L, H) top-k hits; sas: float64 (R, 2, L, H) summed weights.
        random_hits, random_sas: the same for random attention (None when not kept).
    """

    relations: np.ndarray
    edges: np.ndarray
    samples: np.ndarray
    scorable: np.ndarray
    hits: np.ndarray
    sas: np.ndarray
    random_hits: np.ndarray | None
    random_sas: np.ndarray | None

    def accuracy(self, random: bool = False) -> np.ndarray:
        """float64 (R, 4, K, L, H): hits / scorable edges (NaN where none is scorable)."""
        hits = self.random_hits if random else self.hits
        if hits is None:
            raise InputError("the random baseline was not kept")
        den = self.scorable[:, :, None, None, None].astype(np.float64)
        return np.divide(hits, den, out=np.full(hits.shape, np.nan), where=den > 0)

    def mean_sas(self, random: bool = False) -> np.ndarray:
        """float64 (R, 2, L, H): the mean weight the target gets per scorable edge (SAS)."""
        sas = self.random_sas if random else self.sas
        if sas is None:
            raise InputError("the random baseline was not kept")
        den = self.scorable[:, [1, 3], None, None].astype(np.float64)
        return np.divide(sas, den, out=np.full(sas.shape, np.nan), where=den > 0)


class HeadsAccumulator:
    """Per-head relation scores of a dataset, streamed: add snippets, merge parts, take totals.

    Args:
        ks: the k of top-k (default 1, 3, 10).
        causal: a decoder's attention: only targets at or left of the attending token are
            scorable (`codeprobe.probes.heads.score`).
        exclude_self: the attending token is never in its own top k (default True, as
            CodeSyntax zeroes the diagonal).
        max_offset: offsets +-1..max_offset for the rule baselines.
        keywords: token texts of the keyword rules (e.g. the language's reserved words); empty:
            the offset + keyword baseline is the offset baseline.
        random_baseline: also score seeded random attention with every snippet's (L, H).
        random_state: the random baseline's seed.

    Snippets are kept in the order they are added (`merge` puts the other's after); all need the
    same (L, H).
    """

    def __init__(
        self,
        *,
        ks: Sequence[int] = DEFAULT_KS,
        causal: bool = False,
        exclude_self: bool = True,
        max_offset: int = DEFAULT_MAX_OFFSET,
        keywords: Sequence[str] = (),
        random_baseline: bool = True,
        random_state: int = 0,
    ):
        self.ks = check_ks(ks)
        self.causal = bool(causal)
        self.exclude_self = bool(exclude_self)
        if int(max_offset) < 1:
            raise InputError(f"max_offset must be >= 1, got {max_offset}")
        self.max_offset = int(max_offset)
        self.keywords = tuple(str(w) for w in keywords)
        if len(set(self.keywords)) != len(self.keywords):
            raise InputError("keywords must be distinct")
        self.random_baseline = bool(random_baseline)
        self.random_state = int(random_state)
        self._shape: tuple[int, int] | None = None
        self._ids: list[str] = []
        self._chunks: list[dict[str, np.ndarray]] = []  # per snippet or per restored/merged block
        self._flat: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------ settings

    def _key(self) -> tuple:
        return (
            self.ks,
            self.causal,
            self.exclude_self,
            self.max_offset,
            self.keywords,
            self.random_baseline,
            self.random_state,
        )

    @property
    def predictors(self) -> list[str]:
        """The rule predictors' names, in the order of their bits."""
        return predictor_names(self.max_offset, self.keywords)

    @property
    def n_offsets(self) -> int:
        """The first `n_offsets` predictors are offsets, the rest keyword rules."""
        return 2 * self.max_offset

    @property
    def shape(self) -> tuple[int, int] | None:
        """(L, H) of the snippets scored (None before the first)."""
        return self._shape

    @property
    def sample_ids(self) -> list[str]:
        return list(self._ids)

    # ------------------------------------------------------------ adding snippets

    def first_pass(self, sample: HeadsSample | SampleTables) -> SampleTables:
        """The per-snippet work of `add`, which it only folds in: changes nothing, so snippets
        can be scored on worker threads.

        Raises:
            InputError: bad shapes or edges, NaN weights, over 65535 edges of one relation.
        """
        if isinstance(sample, SampleTables):
            return sample
        sample = sample.checked()
        attention = np.asarray(sample.attention)
        n_layers, n_heads, n, _ = attention.shape
        g = n_layers * n_heads
        edges = sample.edges
        attending = attending_positions(edges)
        # The random baseline's rows go under the model's, into one scoring call: the per-edge
        # work (queries, spans, tables) is then done once for both.
        copies = 2 if self.random_baseline else 1
        rows = np.empty((copies * g, attending.size, n), dtype=np.result_type(attention.dtype, np.float32))
        # mode "clip" writes straight into rows ("raise" would buffer); the indices are in range
        np.take(attention.reshape(g, n, n), attending, axis=1, out=rows[:g], mode="clip")
        if self.random_baseline:
            random_rows(
                g,
                attending,
                n,
                random_state=self.random_state,
                sample_id=sample.sample_id,
                causal=self.causal,
                out=rows[g:],
            )
        scores = score_rows(rows, attending, edges, ks=self.ks, causal=self.causal, exclude_self=self.exclude_self)
        codes, relation, counts = np.unique(edges.relation, return_inverse=True, return_counts=True)
        if counts.size and counts.max() > _MAX_COUNT:
            raise InputError(f"sample {sample.sample_id!r}: over {_MAX_COUNT} edges of one relation")
        q, gh, kmax = codes.size, copies * g, self.ks[-1]
        # Per relation, one bincount per table. The hits come from the ranks: the edges at each
        # rank (up to kmax) per relation, score and head, summed over the ranks below each k.
        score_head = np.arange(len(SCORES) * gh).reshape(len(SCORES), gh, 1)
        bins = (scores.rank * q + relation) * score_head.size + score_head
        at_rank = np.bincount(bins.ravel(), minlength=(kmax + 1) * q * score_head.size)
        at_rank = at_rank.reshape(kmax + 1, q, len(SCORES), gh)
        hits = np.stack([at_rank[:k].sum(axis=0) for k in self.ks], axis=2)  # (Q, 4, K, copies * G)
        hits = hits.reshape(q, len(SCORES), len(self.ks), copies, n_layers, n_heads).astype(np.uint16)
        direction_head = np.arange(len(SAS_DIRECTIONS) * gh).reshape(len(SAS_DIRECTIONS), gh, 1)
        bins = relation * direction_head.size + direction_head
        sas = np.bincount(bins.ravel(), scores.sas.ravel(), minlength=q * direction_head.size)
        sas = sas.reshape(q, len(SAS_DIRECTIONS), copies, n_layers, n_heads)
        bins = relation * len(SCORES) + np.arange(len(SCORES))[:, None]
        scorable = np.bincount(bins[scores.scorable], minlength=q * len(SCORES)).reshape(q, len(SCORES))
        tables = {
            "q_sample": np.zeros(q, dtype=np.int64),
            "q_relation": codes.astype(np.int64),
            "q_edges": counts.astype(np.int64),
            "q_scorable": scorable,
            "q_hits": hits[:, :, :, 0],
            "q_sas": sas[:, :, 0],
        }
        if self.random_baseline:
            tables["q_random_hits"] = hits[:, :, :, 1]
            tables["q_random_sas"] = sas[:, :, 1]
        rules = rule_hits(
            edges,
            n,
            sample.tokens,
            max_offset=self.max_offset,
            keywords=self.keywords,
            causal=self.causal,
            exclude_self=self.exclude_self,
        )
        tables["e_sample"] = np.zeros(len(edges), dtype=np.int64)
        tables["e_relation"] = edges.relation.copy()
        tables["e_rules"] = np.packbits(np.moveaxis(rules, -1, 0), axis=-1)  # (E, 4, bytes)
        return SampleTables(sample.sample_id, (n_layers, n_heads), tables, self._key())

    def add(self, sample: HeadsSample | SampleTables) -> HeadsAccumulator:
        """Add one snippet after those added so far; returns self.

        Raises:
            InputError: see `first_pass`; another (L, H) than the snippets before; a first
                pass made with other settings.
        """
        x = self.first_pass(sample)
        if x.key != self._key():
            raise InputError(f"sample {x.sample_id!r}: a first pass made with other settings")
        self._check_shape(x.shape, f"sample {x.sample_id!r}")
        tables = dict(x.tables)
        index = len(self._ids)
        tables["q_sample"] = np.full(tables["q_relation"].shape, index, dtype=np.int64)
        tables["e_sample"] = np.full(tables["e_relation"].shape, index, dtype=np.int64)
        self._ids.append(x.sample_id)
        self._chunks.append(tables)
        self._flat = None
        return self

    def extend(self, samples: Iterable[HeadsSample | SampleTables]) -> HeadsAccumulator:
        """Add a stream of snippets in order; their first passes run on worker threads."""
        for x in threaded_map(self.first_pass, samples):
            self.add(x)
        return self

    def _check_shape(self, shape: tuple[int, int] | None, what: str) -> None:
        if shape is None:
            return
        if self._shape is None:
            self._shape = tuple(shape)
        elif tuple(shape) != self._shape:
            raise InputError(f"{what}: attention of {tuple(shape)} layers x heads, others {self._shape}")

    def merge(self, other: HeadsAccumulator) -> HeadsAccumulator:
        """Add `other`'s snippets after this one's (the same as one accumulator that added both
        in that order); `other` is left as it was. Returns self.

        Raises:
            InputError: other settings, another (L, H), or `other` is this accumulator.
        """
        if other is self:
            raise InputError("an accumulator cannot merge with itself")
        if other._key() != self._key():
            raise InputError(f"accumulators of different settings cannot merge: {self._key()} and {other._key()}")
        self._check_shape(other._shape, "merge")
        flat = other.tables()
        offset = len(self._ids)
        flat = {**flat, "q_sample": flat["q_sample"] + offset, "e_sample": flat["e_sample"] + offset}
        self._ids.extend(other._ids)
        self._chunks.append(flat)
        self._flat = None
        return self

    # ------------------------------------------------------------ tables and totals

    def _names(self) -> tuple[str, ...]:
        names = _Q_TABLES if self.random_baseline else _Q_TABLES[:-2]
        return names + _E_TABLES

    def _empty_tables(self) -> dict[str, np.ndarray]:
        n_layers, n_heads = self._shape or (0, 0)
        s, k = len(SCORES), len(self.ks)
        n_bytes = (len(self.predictors) + 7) // 8
        shapes = {
            "q_sample": ((0,), np.int64),
            "q_relation": ((0,), np.int64),
            "q_edges": ((0,), np.int64),
            "q_scorable": ((0, s), np.int64),
            "q_hits": ((0, s, k, n_layers, n_heads), np.uint16),
            "q_sas": ((0, 2, n_layers, n_heads), np.float64),
            "q_random_hits": ((0, s, k, n_layers, n_heads), np.uint16),
            "q_random_sas": ((0, 2, n_layers, n_heads), np.float64),
            "e_sample": ((0,), np.int64),
            "e_relation": ((0,), np.int64),
            "e_rules": ((0, s, n_bytes), np.uint8),
        }
        return {name: np.zeros(*shapes[name]) for name in self._names()}

    def tables(self) -> dict[str, np.ndarray]:
        """The kept rows as flat arrays (see `to_arrays`), snippets in order (read-only use)."""
        if self._flat is None:
            empty = self._empty_tables()
            chunks = [c for c in self._chunks if c["q_relation"].size or c["e_relation"].size]
            self._flat = {
                name: np.concatenate([empty[name], *(c[name] for c in chunks)]).astype(empty[name].dtype)
                for name in self._names()
            }
            self._chunks = [self._flat]
        return self._flat

    def totals(self, samples: np.ndarray | None = None) -> RelationTotals:
        """Pooled per relation over all snippets, or those whose indices (in `sample_ids`) are
        in `samples` (e.g. one bootstrap draw's, or one split's)."""
        t = self.tables()
        keep = np.ones(t["q_sample"].shape, dtype=bool) if samples is None else np.isin(t["q_sample"], samples)
        codes, inverse = np.unique(t["q_relation"][keep], return_inverse=True)

        def pooled(name: str, dtype=None) -> np.ndarray | None:
            if name not in t:
                return None
            x = t[name][keep]
            out = np.zeros((codes.size, *x.shape[1:]), dtype=dtype or (np.float64 if x.dtype.kind == "f" else np.int64))
            np.add.at(out, inverse, x)
            return out

        return RelationTotals(
            relations=codes.astype(np.int64),
            edges=pooled("q_edges"),
            samples=np.bincount(inverse, minlength=codes.size).astype(np.int64),
            scorable=pooled("q_scorable"),
            hits=pooled("q_hits"),
            sas=pooled("q_sas"),
            random_hits=pooled("q_random_hits"),
            random_sas=pooled("q_random_sas"),
        )

    def rule_hits(self, relation: int, score: int) -> tuple[np.ndarray, np.ndarray]:
        """The edges of one relation: (their snippet indices int64 (E_r,), bool (P, E_r) which
        rule predictor hits each under `SCORES[score]`)."""
        t = self.tables()
        mine = t["e_relation"] == int(relation)
        bits = np.unpackbits(t["e_rules"][mine, score], axis=-1, count=len(self.predictors))
        return t["e_sample"][mine], bits.T.astype(bool)

    # ------------------------------------------------------------ flat arrays

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything this accumulator holds as flat numpy arrays (no pickle; strings as
        unicode arrays), for an .npz; `from_arrays` restores it exactly.

        Settings: `format`, `ks`, `causal`, `exclude_self`, `max_offset`, `keywords`,
        `random_baseline`, `random_state`, `shape` ((L, H), or empty before any snippet),
        `sample_ids`. Per (snippet, relation) row: `q_sample`, `q_relation`, `q_edges`,
        `q_scorable` (Q, 4), `q_hits` uint16 (Q, 4, K, L, H), `q_sas` (Q, 2, L, H), and
        `q_random_hits`, `q_random_sas` with the random baseline. Per edge: `e_sample`,
        `e_relation`, `e_rules` uint8 (E, 4, ceil(P / 8)) (`np.packbits` of the rule hits).
        """
        return {
            "format": np.asarray(FORMAT, dtype=np.int64),
            "ks": np.asarray(self.ks, dtype=np.int64),
            "causal": np.asarray(self.causal),
            "exclude_self": np.asarray(self.exclude_self),
            "max_offset": np.asarray(self.max_offset, dtype=np.int64),
            "keywords": np.asarray(self.keywords, dtype=np.str_).reshape(-1),
            "random_baseline": np.asarray(self.random_baseline),
            "random_state": np.asarray(self.random_state, dtype=np.int64),
            "shape": np.asarray(self._shape or (), dtype=np.int64),
            "sample_ids": np.asarray(self._ids, dtype=np.str_).reshape(-1),
            **{name: x.copy() for name, x in self.tables().items()},
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any]) -> HeadsAccumulator:
        """The accumulator whose `to_arrays()` gave `arrays` (other members are ignored).

        Raises:
            InputError: not the arrays of a heads accumulator of this format.
        """
        try:
            if int(arrays["format"]) != FORMAT:
                raise InputError(f"heads accumulator arrays of format {int(arrays['format'])}, expected {FORMAT}")
            acc = cls(
                ks=[int(k) for k in arrays["ks"]],
                causal=bool(arrays["causal"]),
                exclude_self=bool(arrays["exclude_self"]),
                max_offset=int(arrays["max_offset"]),
                keywords=[str(w) for w in arrays["keywords"]],
                random_baseline=bool(arrays["random_baseline"]),
                random_state=int(arrays["random_state"]),
            )
            shape = tuple(int(x) for x in arrays["shape"])
            acc._shape = shape if shape else None
            acc._ids = [str(x) for x in arrays["sample_ids"]]
            empty = acc._empty_tables()
            flat = {name: np.asarray(arrays[name]) for name in acc._names()}
        except KeyError as err:
            raise InputError(f"not the arrays of a heads accumulator: no member {err}") from None
        for name, x in flat.items():
            if x.dtype != empty[name].dtype or x.shape[1:] != empty[name].shape[1:]:
                raise InputError(
                    f"heads accumulator member {name}: {x.dtype} {x.shape}, expected {empty[name].shape[1:]}"
                )
        acc._chunks = [flat]
        return acc

    # ------------------------------------------------------------ parts and vocabularies

    def _with_tables(self, ids: list[str], tables: dict[str, np.ndarray]) -> HeadsAccumulator:
        acc = HeadsAccumulator(
            ks=self.ks,
            causal=self.causal,
            exclude_self=self.exclude_self,
            max_offset=self.max_offset,
            keywords=self.keywords,
            random_baseline=self.random_baseline,
            random_state=self.random_state,
        )
        acc._shape, acc._ids, acc._chunks = self._shape, list(ids), [tables]
        return acc

    def relabelled(self, codes: np.ndarray) -> HeadsAccumulator:
        """A new accumulator with relation code c renamed `codes[c]` (-1: its rows dropped):
        moves a part's own codes into a dataset's vocabulary, or keeps the frequent relations.

        Raises:
            InputError: a code outside `codes`.
        """
        return self._with_tables(self.sample_ids, _relabel(self.tables(), codes))

    def subset(self, sample_ids: Iterable[str]) -> HeadsAccumulator:
        """A new accumulator of the snippets whose ids are in `sample_ids`, in this one's order
        (e.g. one split's); ids not here are ignored."""
        wanted = set(sample_ids)
        keep = np.asarray([i in wanted for i in self._ids], dtype=bool)
        new_index = np.cumsum(keep) - 1
        t = self.tables()
        tables = {}
        for prefix in ("q_", "e_"):
            rows = keep[t[prefix + "sample"]] if keep.size else np.zeros(0, dtype=bool)
            for name, x in t.items():
                if name.startswith(prefix):
                    tables[name] = new_index[x[rows]] if name == prefix + "sample" else x[rows]
        return self._with_tables([i for i, k in zip(self._ids, keep) if k], tables)

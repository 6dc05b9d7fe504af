"""The heads result: per relation, the best head chosen on validation and reported on test with
bootstrap intervals, against the best baselines chosen the same way; a summary over relations.

    result = evaluate(validation_acc, test_acc, relation_names=names)
    result.table("head->dep", "first", k=1)      # RelationScore rows, one per relation
    result.summary_of("head->dep", "first", 1)   # mean over relations, share beating every baseline

Selection (Clark et al. 2019; CodeSyntax, Shen et al. 2022, who select on the data they report
on: we select on validation and report on test, so the best head's score is not inflated by the
choice): per relation, score ((direction, dependent) of `SCORES`) and k,
- the model's head: the (layer, head) with the highest validation accuracy (ties: the first in
  layer-major order); its test accuracy is the share of scorable test edges it gets right;
- "offset": CodeSyntax's greedy set of k offsets, chosen on validation (k = 1: the best fixed
  offset); "offset+keyword": the better on validation of that set and the greedy set of k
  keyword rules (`codeprobe.probes.heads.baselines`); "random": the best random-attention head
  on validation (when the accumulators kept it); "random weights": the best head of the same
  architecture with random weights, on validation (when its accumulators are given: the same
  snippets scored through that model);
- the best baseline: the one with the highest validation score (ties: that order);
- differences model - baseline on test, paired over snippets; `beats_all`: every paired
  interval lies above 0;
- per layer (the relation x layer map): the layer's best head on validation, its test accuracy.
SAS (Chen et al. 2024): per relation and direction, the head with the highest mean validation
weight on the target, reported on test, against the best random head.

Intervals. A score is a ratio of sums over snippets (hits / scorable edges), so the bootstrap
resamples the test snippets that hold the relation and recomputes the ratio: a percentile
interval as `codeprobe.uncertainty` makes (its `CONFIDENCE`, `N_RESAMPLES`, `Interval`), whose
helpers cover means only. One set of resamples per relation, seeded by (random_state, relation),
serves the model, every baseline and every difference, so all of them are paired. A resample
without a scorable edge is dropped. `Interval.n` is the number of snippets with a scorable edge.
The summary's means over relations get one joint bootstrap of the test snippets (seeded by
random_state alone): each resample recomputes every relation's ratio on the snippets drawn and
averages them (relations without a scorable edge in a resample are left out of its mean).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codeprobe.errors import InputError
from codeprobe.probes.heads.baselines import greedy_predictors
from codeprobe.probes.heads.score import SAS_DIRECTIONS, SCORES, score_index
from codeprobe.probes.heads.scorer import HeadsAccumulator
from codeprobe.uncertainty import CONFIDENCE, N_RESAMPLES, Interval

BASELINES: tuple[str, ...] = ("offset", "offset+keyword", "random", "random weights")
_NAN = Interval(float("nan"), float("nan"), float("nan"), 0)


@dataclass(frozen=True)
class RelationScore:
    """One relation's best head under one score and k, on test, with its baselines.

    Attributes:
        relation, name: the relation's code and name; direction, dependent, k: the score.
        layer, head: the head chosen on validation; validation: its validation accuracy.
        test: its test accuracy (share of scorable test edges) with a 95% interval.
        baselines: per name in `BASELINES` kept, its test accuracy with an interval.
        validation_baselines: their validation accuracies (what chose the best).
        rules: the rule predictors chosen for "offset" and "offset+keyword" (e.g. ("+1", "+3")).
        random_head: (layer, head) of the chosen random-attention head, or None.
        best_baseline: the baseline with the highest validation accuracy.
        difference: model - best baseline on test, paired interval.
        differences: model - each baseline, paired intervals.
        beats_all: every difference's interval lies above 0.
        validation_edges, test_edges: scorable edges behind each score.
        by_layer: per layer, the test accuracy of that layer's best head on validation.
        random_weights_head: (layer, head) of the chosen random-weights head, or None.
    """

    relation: int
    name: str
    direction: str
    dependent: str
    k: int
    layer: int
    head: int
    validation: float
    test: Interval
    baselines: dict[str, Interval]
    validation_baselines: dict[str, float]
    rules: dict[str, tuple[str, ...]]
    random_head: tuple[int, int] | None
    best_baseline: str
    difference: Interval
    differences: dict[str, Interval]
    beats_all: bool
    validation_edges: int
    test_edges: int
    by_layer: tuple[float, ...] = ()
    random_weights_head: tuple[int, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (intervals as `Interval.as_dict`)."""
        return {
            "relation": self.relation,
            "name": self.name,
            "direction": self.direction,
            "dependent": self.dependent,
            "k": self.k,
            "layer": self.layer,
            "head": self.head,
            "validation": _num(self.validation),
            "test": self.test.as_dict(),
            "baselines": {b: iv.as_dict() for b, iv in self.baselines.items()},
            "validation_baselines": {b: _num(v) for b, v in self.validation_baselines.items()},
            "rules": {b: list(r) for b, r in self.rules.items()},
            "random_head": list(self.random_head) if self.random_head else None,
            "best_baseline": self.best_baseline,
            "difference": self.difference.as_dict(),
            "differences": {b: iv.as_dict() for b, iv in self.differences.items()},
            "beats_all": self.beats_all,
            "validation_edges": self.validation_edges,
            "test_edges": self.test_edges,
            "by_layer": [_num(x) for x in self.by_layer],
            "random_weights_head": list(self.random_weights_head) if self.random_weights_head else None,
        }


@dataclass(frozen=True)
class SASScore:
    """One relation's best head by mean attention weight on the target (SAS), per direction.

    Attributes: as `RelationScore`'s; test and random are mean weights per scorable test edge;
    difference: model - best random head, paired.
    """

    relation: int
    name: str
    direction: str
    layer: int
    head: int
    validation: float
    test: Interval
    random: Interval
    random_head: tuple[int, int] | None
    difference: Interval

    def as_dict(self) -> dict[str, Any]:
        return {
            "relation": self.relation,
            "name": self.name,
            "direction": self.direction,
            "layer": self.layer,
            "head": self.head,
            "validation": _num(self.validation),
            "test": self.test.as_dict(),
            "random": self.random.as_dict(),
            "random_head": list(self.random_head) if self.random_head else None,
            "difference": self.difference.as_dict(),
        }


@dataclass(frozen=True)
class RelationSummary:
    """Over the relations scored on test under one score and k.

    Attributes:
        n_relations: relations with a test score; mean: the mean of their best heads' test
        accuracies; mean_best_baseline: of their best baselines'; mean_difference: of the
        differences; share_beating_all: the share of relations whose model beats every baseline
        (paired interval above 0); mean_ci, mean_best_baseline_ci, mean_difference_ci: their
        joint bootstrap intervals over the test snippets (the module's doc).
    """

    direction: str
    dependent: str
    k: int
    n_relations: int
    mean: float
    mean_best_baseline: float
    mean_difference: float
    share_beating_all: float
    mean_ci: Interval = _NAN
    mean_best_baseline_ci: Interval = _NAN
    mean_difference_ci: Interval = _NAN

    def as_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "dependent": self.dependent,
            "k": self.k,
            "n_relations": self.n_relations,
            "mean": _num(self.mean),
            "mean_best_baseline": _num(self.mean_best_baseline),
            "mean_difference": _num(self.mean_difference),
            "share_beating_all": _num(self.share_beating_all),
            "mean_ci": self.mean_ci.as_list(),
            "mean_best_baseline_ci": self.mean_best_baseline_ci.as_list(),
            "mean_difference_ci": self.mean_difference_ci.as_list(),
        }


@dataclass(frozen=True)
class SnippetHits:
    """Per test snippet, what each relation's best head (chosen on validation, per score and k)
    got right: the per-snippet values behind the test scores, e.g. for paired comparisons of
    two models or checkpoints on the same snippets.

    Attributes:
        sample_ids: the test snippets' ids, (n,).
        names: the relations' names, (R,), in `HeadsResult.scores`' order.
        ks: the k of each top-k, (K,).
        scorable: int64 (n, R, len(SCORES)): the snippet's scorable edges of the relation.
        hits: int64 (n, R, len(SCORES), K): of them, the ones the best head's top-k holds
            (0 where no head was chosen: no scorable validation edge).
    """

    sample_ids: tuple[str, ...]
    names: tuple[str, ...]
    ks: tuple[int, ...]
    scorable: np.ndarray
    hits: np.ndarray

    def accuracy(self, direction: str, dependent: str, k: int) -> np.ndarray:
        """float (n, R): each snippet's share of its scorable edges of each relation that the
        relation's best head gets right under that score and k; NaN where it has none.

        Raises:
            InputError: no such score or k.
        """
        if int(k) not in self.ks:
            raise InputError(f"k={k} was not evaluated (ks {list(self.ks)})")
        s = score_index(direction, dependent)
        den = self.scorable[:, :, s].astype(np.float64)
        num = self.hits[:, :, s, self.ks.index(int(k))].astype(np.float64)
        return np.divide(num, den, out=np.full(den.shape, np.nan), where=den > 0)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat arrays for `np.savez` (`from_arrays` reads them back)."""
        return {
            "sample_ids": np.asarray(self.sample_ids, dtype=str),
            "names": np.asarray(self.names, dtype=str),
            "ks": np.asarray(self.ks, dtype=np.int64),
            "scorable": self.scorable,
            "hits": self.hits,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any]) -> SnippetHits:
        return cls(
            tuple(str(x) for x in arrays["sample_ids"]),
            tuple(str(x) for x in arrays["names"]),
            tuple(int(x) for x in arrays["ks"]),
            np.asarray(arrays["scorable"], dtype=np.int64),
            np.asarray(arrays["hits"], dtype=np.int64),
        )


@dataclass(frozen=True)
class HeadsResult:
    """`evaluate`'s result: `scores` (per relation, score and k), `sas`, `summary` (per score
    and k), the settings it was computed under, and the test scores per snippet (`snippets`:
    not in `as_dict`)."""

    scores: tuple[RelationScore, ...]
    sas: tuple[SASScore, ...]
    summary: tuple[RelationSummary, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    snippets: SnippetHits | None = None

    def table(self, direction: str = "head->dep", dependent: str = "first", k: int = 1) -> list[RelationScore]:
        """The rows of one score and k, by relation code."""
        score_index(direction, dependent)
        return [r for r in self.scores if (r.direction, r.dependent, r.k) == (direction, dependent, int(k))]

    def summary_of(self, direction: str = "head->dep", dependent: str = "first", k: int = 1) -> RelationSummary:
        """The summary of one score and k.

        Raises:
            InputError: that score and k were not evaluated.
        """
        for s in self.summary:
            if (s.direction, s.dependent, s.k) == (direction, dependent, int(k)):
                return s
        raise InputError(f"no summary for {direction} {dependent} k={k}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "scores": [r.as_dict() for r in self.scores],
            "sas": [r.as_dict() for r in self.sas],
            "summary": [s.as_dict() for s in self.summary],
        }


class _Resamples:
    """One relation's bootstrap: resample counts C (B, m) of its m test snippets."""

    def __init__(self, m: int, seed: tuple[int, ...], confidence: float, n_resamples: int):
        self.m = m
        self.alpha = (1.0 - confidence) / 2.0
        self.counts = None
        if m >= 2:
            draws = np.random.default_rng(seed).integers(0, m, size=(n_resamples, m))
            counts = np.zeros((n_resamples, m), dtype=np.float64)
            np.add.at(counts, (np.arange(n_resamples)[:, None], draws), 1.0)
            self.counts = counts

    def interval(self, num: np.ndarray, den: np.ndarray) -> Interval:
        """sum(num) / sum(den) with its percentile interval over the resamples."""
        num = np.asarray(num, dtype=np.float64)
        den = np.asarray(den, dtype=np.float64)
        n = int(np.count_nonzero(den > 0))
        if n == 0:
            return _NAN
        point = float(num.sum() / den.sum())
        if n < 2 or self.counts is None:
            return Interval(point, float("nan"), float("nan"), n)
        d = self.counts @ den
        keep = d > 0
        stats = (self.counts[keep] @ num) / d[keep]
        low, high = np.percentile(stats, [100 * self.alpha, 100 * (1 - self.alpha)])
        return Interval(point, float(low), float(high), n)

    def mean_of_ratios(self, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Interval:
        """The mean over parts of sum(num) / sum(den), each part's rows being the snippets
        `population` (indices into the m resampled ones), with its percentile interval; `n`:
        the parts."""
        if not parts:
            return _NAN
        point = float(np.mean([num.sum() / den.sum() for _, num, den in parts]))
        if self.counts is None:
            return Interval(point, float("nan"), float("nan"), len(parts))
        ratios = np.full((self.counts.shape[0], len(parts)), np.nan)
        for j, (population, num, den) in enumerate(parts):
            c = self.counts[:, population]
            d = c @ np.asarray(den, dtype=np.float64)
            np.divide(c @ np.asarray(num, dtype=np.float64), d, out=ratios[:, j], where=d > 0)
        stats = np.nanmean(ratios, axis=1)
        low, high = np.nanpercentile(stats, [100 * self.alpha, 100 * (1 - self.alpha)])
        return Interval(point, float(low), float(high), len(parts))


class _RandomWeights:
    """The random-weights model's scores of the same test snippets and edges, lined up with
    the model's: per relation, score and k, its best head on validation and that head's test
    hits per snippet of the relation's population."""

    def __init__(
        self,
        accumulators: tuple[HeadsAccumulator, HeadsAccumulator],
        validation: HeadsAccumulator,
        test: HeadsAccumulator,
    ):
        w_valid, w_test = accumulators
        for acc in (w_valid, w_test):
            if (
                acc.ks != validation.ks
                or acc.causal != validation.causal
                or acc.exclude_self != validation.exclude_self
            ):
                raise InputError("the random-weights accumulators have other score settings")
            if acc.shape is not None and acc.shape != validation.shape:
                raise InputError(
                    f"random-weights attention is {acc.shape} layers x heads, the model's {validation.shape}"
                )
        if w_test.sample_ids != test.sample_ids:
            raise InputError("the random-weights model scored other test snippets than the model")
        mine, theirs = test.tables(), w_test.tables()
        same = all(np.array_equal(mine[n], theirs[n]) for n in ("q_sample", "q_relation", "q_scorable"))
        if not same:
            raise InputError("the random-weights model scored other test edges than the model")
        self.totals = w_valid.totals()
        self.tables = theirs
        self.ks = validation.ks

    def best(
        self, code: int, score: int, k_index: int, population: np.ndarray, n_heads: int
    ) -> tuple[float, np.ndarray, tuple[int, int] | None]:
        """(validation accuracy of the best random-weights head, its test hits per snippet of
        `population`, its (layer, head)); 0 and no head where validation has no such edge."""
        rows = np.flatnonzero(self.totals.relations == code)
        mine = self.tables["q_relation"] == code
        g = self.tables["q_hits"].shape[-1] * self.tables["q_hits"].shape[-2]
        if not rows.size or not self.totals.scorable[rows[0], score]:
            return 0.0, np.zeros(population.size), None
        v = self.totals.hits[rows[0], score, k_index].reshape(-1) / self.totals.scorable[rows[0], score]
        best = int(np.argmax(v))
        hits = self.tables["q_hits"][mine].reshape(-1, len(SCORES), len(self.ks), g)[:, score, k_index, best]
        return float(v[best]), hits.astype(np.float64), divmod(best, n_heads)


def _names(relation_names: Mapping[int, str] | Sequence[str] | None, code: int) -> str:
    if relation_names is None:
        return str(code)
    if isinstance(relation_names, Mapping):
        return str(relation_names.get(code, code))
    return str(relation_names[code]) if 0 <= code < len(relation_names) else str(code)


def evaluate(
    validation: HeadsAccumulator,
    test: HeadsAccumulator,
    *,
    relation_names: Mapping[int, str] | Sequence[str] | None = None,
    random_weights: tuple[HeadsAccumulator, HeadsAccumulator] | None = None,
    min_edges: int = 1,
    random_state: int = 0,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
) -> HeadsResult:
    """Choose on `validation`, report on `test` (see the module's doc for every choice).

    Args:
        validation, test: accumulators of the two splits, of the same settings and (L, H).
        relation_names: code -> name (a mapping or a sequence indexed by code).
        random_weights: (validation, test) accumulators of the same snippets scored through the
            same architecture with random weights (the "random weights" baseline), or None.
        min_edges: relations with fewer validation edges are left out (CodeSyntax and Chen et
            al. drop rare relations; the pipeline's minimum count is its setting).
        random_state, confidence, n_resamples: the bootstrap's.

    Raises:
        InputError: other settings or (L, H), or no validation snippet; random-weights
            accumulators of other settings, shape, snippets or edges.
    """
    if validation._key() != test._key():
        raise InputError("validation and test accumulators have different settings")
    if validation.shape is None:
        raise InputError("no validation snippet was scored")
    if test.shape is not None and test.shape != validation.shape:
        raise InputError(f"validation attention is {validation.shape} layers x heads, test {test.shape}")
    n_layers, n_heads = validation.shape
    g = n_layers * n_heads
    ks, names = validation.ks, validation.predictors
    n_off, n_pred = validation.n_offsets, len(names)
    totals = validation.totals()
    t = test.tables()
    rand = validation.random_baseline
    weights = _RandomWeights(random_weights, validation, test) if random_weights is not None else None
    joint = _Resamples(len(test.sample_ids), (int(random_state),), confidence, n_resamples)
    in_mean: dict[tuple[str, str, int], list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {}
    scores: list[RelationScore] = []
    sas_rows: list[SASScore] = []
    evaluated = [(r, code) for r, code in enumerate(totals.relations.tolist()) if totals.edges[r] >= min_edges]
    snippet_scorable = np.zeros((len(test.sample_ids), len(evaluated), len(SCORES)), dtype=np.int64)
    snippet_hits = np.zeros((*snippet_scorable.shape, len(ks)), dtype=np.int64)
    for column, (r, code) in enumerate(evaluated):
        name = _names(relation_names, code)
        mine = t["q_relation"] == code
        population = t["q_sample"][mine]  # one row per test snippet holding the relation, in order
        m = population.size
        boot = _Resamples(m, (int(random_state), int(code)), confidence, n_resamples)
        den_all = t["q_scorable"][mine].astype(np.float64)
        hits_all = t["q_hits"][mine].reshape(m, len(SCORES), len(ks), g)
        rhits_all = t["q_random_hits"][mine].reshape(m, len(SCORES), len(ks), g) if rand else None
        snippet_scorable[population, column] = t["q_scorable"][mine]
        for s, (direction, dependent) in enumerate(SCORES):
            vs = int(totals.scorable[r, s])
            if vs == 0:
                continue
            den = den_all[:, s]
            _, v_rules = validation.rule_hits(code, s)
            e_sample, t_rules = test.rule_hits(code, s)
            pos = np.searchsorted(population, e_sample)
            families = {
                "offset": greedy_predictors(v_rules, ks[-1], np.arange(n_off)),
                "keyword": greedy_predictors(v_rules, ks[-1], np.arange(n_off, n_pred)),
            }

            for i, k in enumerate(ks):
                v_acc = totals.hits[r, s, i].reshape(g) / vs
                best = int(np.argmax(v_acc))
                num = hits_all[:, s, i, best].astype(np.float64)
                snippet_hits[population, column, s, i] = hits_all[:, s, i, best]
                base_v: dict[str, float] = {}
                base_num: dict[str, np.ndarray] = {}
                rules: dict[str, tuple[str, ...]] = {}
                off = families["offset"][:k]
                base_v["offset"], base_num["offset"] = _rule_score(off, v_rules, t_rules, vs, pos, m)
                rules["offset"] = tuple(names[p] for p in off)
                kw = families["keyword"][:k]
                v_kw, num_kw = _rule_score(kw, v_rules, t_rules, vs, pos, m)
                if kw and v_kw > base_v["offset"]:
                    base_v["offset+keyword"], base_num["offset+keyword"] = v_kw, num_kw
                    rules["offset+keyword"] = tuple(names[p] for p in kw)
                else:
                    base_v["offset+keyword"], base_num["offset+keyword"] = base_v["offset"], base_num["offset"]
                    rules["offset+keyword"] = rules["offset"]
                random_head = weights_head = None
                if weights is not None:
                    wv, wnum, weights_head = weights.best(code, s, i, population, n_heads)
                    base_v["random weights"], base_num["random weights"] = wv, wnum
                if rand:
                    rv = totals.random_hits[r, s, i].reshape(g) / vs
                    rbest = int(np.argmax(rv))
                    base_v["random"] = float(rv[rbest])
                    base_num["random"] = rhits_all[:, s, i, rbest].astype(np.float64)
                    random_head = divmod(rbest, n_heads)
                best_base = max(base_v, key=lambda b: (base_v[b], -BASELINES.index(b)))
                diffs = {b: boot.interval(num - base_num[b], den) for b in base_num}
                in_mean.setdefault((direction, dependent, int(k)), []).append(
                    (population, num, base_num[best_base], den)
                )
                layer_best = v_acc.reshape(n_layers, n_heads).argmax(axis=1) + np.arange(n_layers) * n_heads
                layer_hits = hits_all[:, s, i][:, layer_best].sum(axis=0)
                by_layer = tuple(float(x) / den.sum() if den.sum() else float("nan") for x in layer_hits)
                scores.append(
                    RelationScore(
                        relation=int(code),
                        name=name,
                        direction=direction,
                        dependent=dependent,
                        k=int(k),
                        layer=best // n_heads,
                        head=best % n_heads,
                        validation=float(v_acc[best]),
                        test=boot.interval(num, den),
                        baselines={b: boot.interval(x, den) for b, x in base_num.items()},
                        validation_baselines=base_v,
                        rules=rules,
                        random_head=random_head,
                        best_baseline=best_base,
                        difference=diffs[best_base],
                        differences=diffs,
                        beats_all=all(d.low > 0 for d in diffs.values()),
                        validation_edges=vs,
                        test_edges=int(den.sum()),
                        by_layer=by_layer,
                        random_weights_head=weights_head,
                    )
                )
        for d, direction in enumerate(SAS_DIRECTIONS):
            s = score_index(direction, "any" if direction == "head->dep" else "first")
            vs = int(totals.scorable[r, s])
            if vs == 0:
                continue
            den = den_all[:, s]
            v_mean = totals.sas[r, d].reshape(g) / vs
            best = int(np.argmax(v_mean))
            num = t["q_sas"][mine][:, d].reshape(m, g)[:, best]
            random_iv, diff, random_head = _NAN, _NAN, None
            if rand:
                rbest = int(np.argmax(totals.random_sas[r, d].reshape(g)))
                rnum = t["q_random_sas"][mine][:, d].reshape(m, g)[:, rbest]
                random_iv, diff, random_head = (
                    boot.interval(rnum, den),
                    boot.interval(num - rnum, den),
                    divmod(rbest, n_heads),
                )
            sas_rows.append(
                SASScore(
                    relation=int(code),
                    name=name,
                    direction=direction,
                    layer=best // n_heads,
                    head=best % n_heads,
                    validation=float(v_mean[best]),
                    test=boot.interval(num, den),
                    random=random_iv,
                    random_head=random_head,
                    difference=diff,
                )
            )
    summary = []
    for direction, dependent in SCORES:
        for k in ks:
            rows = [
                x
                for x in scores
                if (x.direction, x.dependent, x.k) == (direction, dependent, k) and np.isfinite(x.test.mean)
            ]
            parts = [p for p in in_mean.get((direction, dependent, int(k)), []) if p[3].sum() > 0]
            summary.append(
                RelationSummary(
                    direction=direction,
                    dependent=dependent,
                    k=int(k),
                    n_relations=len(rows),
                    mean=_mean([x.test.mean for x in rows]),
                    mean_best_baseline=_mean([x.baselines[x.best_baseline].mean for x in rows]),
                    mean_difference=_mean([x.difference.mean for x in rows]),
                    share_beating_all=_mean([float(x.beats_all) for x in rows]),
                    mean_ci=joint.mean_of_ratios([(pop, num, den) for pop, num, _, den in parts]),
                    mean_best_baseline_ci=joint.mean_of_ratios([(pop, base, den) for pop, _, base, den in parts]),
                    mean_difference_ci=joint.mean_of_ratios([(pop, num - base, den) for pop, num, base, den in parts]),
                )
            )
    settings = {
        "ks": list(ks),
        "causal": validation.causal,
        "exclude_self": validation.exclude_self,
        "max_offset": validation.max_offset,
        "keywords": list(validation.keywords),
        "random_baseline": rand,
        "random_weights": random_weights is not None,
        "random_state": validation.random_state,
        "bootstrap_random_state": int(random_state),
        "confidence": confidence,
        "n_resamples": n_resamples,
        "min_edges": int(min_edges),
        "shape": [n_layers, n_heads],
        "validation_samples": len(validation.sample_ids),
        "test_samples": len(test.sample_ids),
        "selection": "best head and baselines per relation on validation, reported on test",
        "tie_breaking": "top-k by descending weight, lower token index first",
    }
    snippets = SnippetHits(
        tuple(test.sample_ids),
        tuple(_names(relation_names, code) for _, code in evaluated),
        tuple(int(k) for k in ks),
        snippet_scorable,
        snippet_hits,
    )
    return HeadsResult(tuple(scores), tuple(sas_rows), tuple(summary), settings, snippets)


def _rule_score(
    chosen: list[int], v_rules: np.ndarray, t_rules: np.ndarray, vs: int, pos: np.ndarray, m: int
) -> tuple[float, np.ndarray]:
    """A rule set's validation accuracy and its test hits per snippet of the population."""
    v = float(v_rules[chosen].any(axis=0).sum() / vs) if chosen else 0.0
    hit = t_rules[chosen].any(axis=0) if chosen else np.zeros(t_rules.shape[1], dtype=bool)
    return v, np.bincount(pos, weights=hit.astype(np.float64), minlength=m)


def _mean(values: list[float]) -> float:
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 6)

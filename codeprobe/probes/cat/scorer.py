"""The one streaming CAT scorer: a dataset's CAT result built sample by sample, merged across
parts of the data, and saved to and restored from flat arrays.

    scorer = CATAccumulator(language="python", types="paper")
    scorer.extend(samples)                      # or scorer.add(sample), one at a time
    scorer.merge(other)                         # another part's samples, after these
    scorer.save("part.npz"); CATAccumulator.load("part.npz")
    result = scorer.result()                    # the CATResult

Every dataset-level CAT score goes through it: the library (`score_samples`, `CATProbe.score`),
the pipeline's shards (each adds its samples and saves) and their reduce (loads and merges the
shards', takes the result), and the snippet explorer.

Flow. Under `paper` and `all` (or kept types given) the kept types are known up front, so each
sample is scored as it arrives and only its rows and its counts in the type-rate table are kept.
`topk` keeps, per layer, the types with the highest rates over the *whole* dataset, so no sample
can be scored before every sample has been seen: the accumulator keeps each sample's inputs and
scores them in `result()`. Re-running the model instead would double the dominant cost (the
forward pass).

Memory. The samples and their rows or inputs are kept in a `SampleStore`; under `topk` the
inputs go to an anonymous temporary file (`spill_dir`), read back sequentially by `result()`
(`codeprobe.probes.cat.sample_store`). The flat-array and .npz layout is
`codeprobe.probes.cat.scorer_arrays`'s.

Threads. `first_pass` is the per-sample work (scores, token hits, head mean) and changes nothing,
so it runs on worker threads (numpy releases the GIL); `add` folds first passes in, in sample
order, on one thread. `extend` does both over a stream.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from codeprobe.errors import InputError
from codeprobe.prefetch import threaded_map
from codeprobe.probes.cat.dataset import CATSample, SkippedSample, head_mean, score_sample
from codeprobe.probes.cat.results import MEAN_HEAD, CATResult, CATSampleScores, CATSummary
from codeprobe.probes.cat.sample_store import SampleStore
from codeprobe.probes.cat.score import DEFAULT_QUANTILE, check_mask, check_quantile
from codeprobe.probes.cat.scorer_arrays import (
    ScorerRecord,
    input_arrays,
    load_arrays,
    read_inputs,
    read_record,
    read_rows,
    record_arrays,
    row_arrays,
    save_arrays,
)
from codeprobe.probes.cat.types import (
    DEFAULT_TOP_K,
    TypeRateAccumulator,
    check_strategy,
    select_types,
    token_hits,
)


@dataclass(frozen=True)
class FirstPass:
    """What `CATAccumulator.first_pass` made of one sample, for `CATAccumulator.add`.

    sample_id, types: the sample's; shape: its attention's leading shape, (L,) or (L, H);
    hits: int64 (L, n), its `token_hits` on the head-mean attention; rows: its `score_sample`
    rows (the head mean and, for per-head attention, every head) where the kept types are known
    up front, else None; sample: under `topk`, the inputs to keep for `result()`, else None;
    key: the settings of the accumulator that made it (`add` takes only its own).
    """

    sample_id: str
    types: tuple[str, ...]
    shape: tuple[int, ...]
    hits: np.ndarray
    rows: dict[str, np.ndarray] | None
    sample: CATSample | None
    key: tuple


class CATAccumulator:
    """CAT-probing of a dataset, streamed: add samples, merge parts, save, take the result.

    Args:
        language: picks the `paper` list (and is recorded).
        types: frequent-type strategy, `paper`, `topk` or `all` (`codeprobe.probes.cat.types`).
        quantile: q; random_state: seed of the random baseline; top_k: k of `topk`.
        mask: the cells scored, "full" (the paper's, for encoders) or "causal" (the pairs a
            decoder's query can attend to: key j <= query i), for the scores, both baselines
            and the type rates alike (`codeprobe.probes.cat.score`). A `CATProbe` resolves its
            "auto" from the model's kind; here it must be resolved.
        kept_types: per layer, the type names to keep (None = all types), instead of the
            strategy's: e.g. a finished run's own `CATResult.kept_types`. Samples are then
            scored as they arrive, whatever `types` says (which is only recorded).
        head_rows: keep the rows of single heads (per-head attention: (L, H, n, n)) beside the
            head mean's, and under `topk` the per-head attention they need. False keeps the
            head-mean rows only and, under `topk`, each sample's head-mean attention as float32
            (1/H of the size, a pipeline shard's choice; its per-head rows go beside it).
        spill_dir: where `topk` keeps its samples' inputs (default: the system's temp folder).

    Samples are kept in the order they are added (`merge` puts the other's after); a sample is a
    `CATSample`, a `SkippedSample` (its rows say why) or this accumulator's `first_pass` of one.
    All samples need the same number of layers (and heads, if per head).
    """

    def __init__(
        self,
        *,
        language: str | None,
        types: str = "paper",
        quantile: float = DEFAULT_QUANTILE,
        top_k: int = DEFAULT_TOP_K,
        random_state: int = 0,
        mask: str = "full",
        kept_types: Sequence[Iterable[str] | None] | None = None,
        head_rows: bool = True,
        spill_dir: str | os.PathLike | None = None,
    ):
        self.language = language
        self.types = check_strategy(types, language)
        self.quantile = check_quantile(quantile)
        if int(top_k) < 1:
            raise InputError(f"top_k must be >= 1, got {top_k}")
        self.top_k = int(top_k)
        self.random_state = int(random_state)
        self.mask = check_mask(mask, resolved=True)
        self.kept_given = None if kept_types is None else tuple(None if k is None else frozenset(k) for k in kept_types)
        self.head_rows = bool(head_rows)
        self.spill_dir = spill_dir
        self._kept_for_layers: dict[int, list[frozenset[str] | None]] = {}
        self._empty()

    def _empty(self) -> None:
        self._rates = TypeRateAccumulator(self.quantile, self.mask)
        self._shape: tuple[int, ...] | None = None  # attention's leading shape, (L,) or (L, H)
        self._store = SampleStore(self.spill_dir)  # the samples, their rows or (topk) inputs

    # ------------------------------------------------------------ adding samples

    @property
    def deferred(self) -> bool:
        """Whether scoring waits for `result()` (`topk`: kept types from dataset-wide rates)
        rather than taking each sample as it arrives."""
        return self.types == "topk" and self.kept_given is None

    def _key(self) -> tuple:
        """What two accumulators must share to merge (and a first pass to be added)."""
        return (
            self.language,
            self.types,
            self.quantile,
            self.top_k,
            self.random_state,
            self.mask,
            self.kept_given,
            self.head_rows,
        )

    def first_pass(self, sample: CATSample | SkippedSample | FirstPass) -> FirstPass | SkippedSample:
        """The per-sample work of `add`, which it only folds in: changes nothing, so samples can
        be prepared on worker threads (a skipped sample or a first pass comes back as it is)."""
        if not isinstance(sample, CATSample):
            return sample
        shape = tuple(np.shape(sample.attention)[:-2])
        if self.deferred:
            if not self.head_rows:
                sample = replace(sample, attention=head_mean(sample.attention).astype(np.float32))
            hits = token_hits(head_mean(sample.attention), self.quantile, self.mask)
            return FirstPass(sample.sample_id, tuple(sample.types), shape, hits, None, sample, self._key())
        mean = head_mean(sample.attention)
        rows = score_sample(
            sample,
            self._kept_types_of(shape[0]),
            quantile=self.quantile,
            random_state=self.random_state,
            mask=self.mask,
            mean=mean,
        )
        hits = token_hits(mean, self.quantile, self.mask)
        return FirstPass(sample.sample_id, tuple(sample.types), shape, hits, rows, None, self._key())

    def add(self, sample: CATSample | SkippedSample | FirstPass) -> CATAccumulator:
        """Add one sample after those added so far; returns self."""
        x = self.first_pass(sample)
        if isinstance(x, SkippedSample):
            self._store.add_skipped(x)
            return self
        if x.key != self._key():
            raise InputError(f"sample {x.sample_id!r}: a first pass made with other settings")
        if self._shape is None:
            self._shape = x.shape
        elif x.shape != self._shape:
            raise InputError(f"sample {x.sample_id!r}: attention is {x.shape} x n x n, others {self._shape}")
        self._rates.add(x.types, x.hits)
        if x.sample is not None:
            self._store.add_inputs(x.sample)
        else:
            rows = x.rows
            if not self.head_rows and len(x.shape) == 2:
                mean = rows["head"] == MEAN_HEAD
                rows = {k: v[mean] for k, v in rows.items()}
            self._store.add_rows(x.sample_id, rows)
        return self

    def extend(self, samples: Iterable[CATSample | SkippedSample | FirstPass]) -> CATAccumulator:
        """Add a stream of samples, in order (read once): their first passes run on worker
        threads, a few ahead of the one being added here. Returns self."""
        for x in threaded_map(self.first_pass, samples):
            self.add(x)
        return self

    def merge(self, other: CATAccumulator) -> CATAccumulator:
        """Add `other`'s samples after this one's: the same result as one accumulator that added
        this one's samples and then other's. `other` is left as it was. Returns self.

        Raises:
            InputError: other settings, other attention shapes, or `other` is this accumulator.
        """
        if other is self:
            raise InputError("an accumulator cannot merge with itself")
        if other._key() != self._key():
            raise InputError(f"accumulators of different settings cannot merge: {self._key()} and {other._key()}")
        if self._shape is not None and other._shape is not None and other._shape != self._shape:
            raise InputError(f"accumulators of attention {self._shape} and {other._shape} x n x n cannot merge")
        self._shape = self._shape or other._shape
        self._rates.merge(other._rates)
        self._store.merge(other._store)
        return self

    def close(self) -> None:
        """Empty the accumulator, letting go of its kept inputs (a spill file closes once no
        accumulator refers to it)."""
        self._empty()

    def __enter__(self) -> CATAccumulator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _kept_types_of(self, n_layers: int) -> list[frozenset[str] | None]:
        """The kept types of samples of `n_layers` layers, where they are known up front."""
        kept = self._kept_for_layers.get(n_layers)
        if kept is None:
            if self.kept_given is None:
                kept = select_types(self.types, language=self.language, n_layers=n_layers)
            elif len(self.kept_given) == n_layers:
                kept = list(self.kept_given)
            else:
                raise InputError(f"{len(self.kept_given)} kept type sets given for samples of {n_layers} layers")
            self._kept_for_layers[n_layers] = kept  # a race computes the same list twice: harmless
        return kept

    # ------------------------------------------------------------ the result

    def kept_types(self) -> list[frozenset[str] | None]:
        """Per layer, the kept type names (None = all): given, the strategy's, or under `topk`
        those of the rates of the samples so far.

        Raises:
            InputError: no sample has inputs (and no kept types were given).
        """
        if self.kept_given is not None:
            return list(self.kept_given)
        n_layers = self._scored_shape()[0]
        if self.deferred:
            return select_types(
                self.types, language=self.language, rates=self._rates.result(), n_layers=n_layers, top_k=self.top_k
            )
        return list(self._kept_types_of(n_layers))

    def samples(self) -> CATSampleScores:
        """The rows of every sample added, in order (see `CATSampleScores`): the scores and
        baselines per layer (and head), NaN with the reason for skipped samples."""
        return self._samples(self.kept_types())

    def result(self, settings: dict[str, Any] | None = None) -> CATResult:
        """The `CATResult` of the samples added: rows, the per-layer summary with its bootstrap
        intervals, the rate table, the kept types and the settings record (`settings`: model,
        versions, ..., next to this accumulator's own). Under `topk` the samples are scored now.

        Raises:
            InputError: no sample has inputs.
        """
        kept = self.kept_types()
        rows = self._samples(kept)
        return CATResult(
            samples=rows,
            summary=CATSummary.from_samples(rows, self.random_state),
            rates=self._rates.result(),
            kept_types=tuple(tuple(sorted(k)) if k is not None else None for k in kept),
            settings={
                **(settings or {}),
                "language": self.language,
                "types": self.types,
                "top_k": self.top_k if self.types == "topk" else None,
                "quantile": self.quantile,
                "random_state": self.random_state,
                "mask": self.mask,
                "random_baseline": "uniform[0,1) cells, rows normalised to sum 1"
                + (" over the keys j <= i" if self.mask == "causal" else ""),
                "positional_baseline": "exp(-|p_i - p_j|), p = token index in the snippet"
                + (", 0 where p_j > p_i" if self.mask == "causal" else ""),
            },
        )

    def _scored_shape(self) -> tuple[int, ...]:
        if self._shape is None:
            reasons = sorted(set(r for r in self._store.reasons if r is not None))
            raise InputError(f"no sample could be scored ({'; '.join(reasons) or 'no samples'})")
        return self._shape

    def _heads_kept(self) -> int:
        """Single heads with rows of their own (0: the head mean only)."""
        shape = self._scored_shape()
        return shape[1] if self.head_rows and len(shape) == 2 else 0

    def _samples(self, kept: list[frozenset[str] | None]) -> CATSampleScores:
        n_layers, n_heads = self._scored_shape()[0], self._heads_kept()
        if self.deferred:
            score = lambda s: score_sample(  # noqa: E731
                s, kept, quantile=self.quantile, random_state=self.random_state, mask=self.mask
            )
            scored = threaded_map(score, self._store.kept_samples())  # read back in order, in this thread
        else:
            scored = iter(self._store.rows())
        return CATSampleScores.concat(list(self._store.in_order(scored, n_layers, n_heads)))

    # ------------------------------------------------------------ flat arrays

    def _record(self) -> ScorerRecord:
        settings = {
            "language": self.language,
            "types": self.types,
            "quantile": self.quantile,
            "top_k": self.top_k,
            "random_state": self.random_state,
            "mask": self.mask,
            "kept_types": self.kept_given,
            "head_rows": self.head_rows,
        }
        return ScorerRecord(settings, self._shape, self._store.ids, self._store.reasons, self._rates.result())

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything this accumulator holds as flat numpy arrays (no pickle: strings as
        unicode arrays), for an .npz; `from_arrays` restores it exactly. The settings, samples
        and rate table, then the rows of the samples with inputs where they are scored as they
        arrive, or under `topk` their inputs (the layout: `codeprobe.probes.cat.scorer_arrays`).
        """
        arrays = record_arrays(self._record())
        if self.deferred:
            return {**arrays, **input_arrays(list(self._store.kept_samples()))}
        return {**arrays, **row_arrays(CATSampleScores.concat(self._store.rows()))}

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], *, spill_dir: str | os.PathLike | None = None
    ) -> CATAccumulator:
        """The accumulator whose `to_arrays()` gave `arrays` (other members, such as a step key
        `_key` beside them in a file, are ignored). Kept `topk` inputs go to a spill file in
        `spill_dir`, so that `arrays` need not stay in memory.

        Raises:
            InputError: not the arrays of an accumulator (of this format).
        """
        try:
            return cls._from_arrays(arrays, spill_dir)
        except KeyError as err:
            raise InputError(f"not the arrays of a CAT accumulator: no member {err}") from None

    @classmethod
    def _from_arrays(cls, arrays: Mapping[str, np.ndarray], spill_dir: str | os.PathLike | None) -> CATAccumulator:
        record = read_record(arrays)
        acc = cls(**record.settings, spill_dir=spill_dir)
        acc._shape = record.shape
        acc._rates = TypeRateAccumulator.from_table(record.rates)
        scored, rows, inputs = record.scored_ids(), None, []
        if acc.deferred:
            lead = () if acc._shape is None else acc._shape if acc.head_rows else acc._shape[:1]
            inputs = read_inputs(arrays, scored, lead)
        else:
            rows = read_rows(arrays)
            n_rows = len(scored) * acc._shape[0] * (1 + acc._heads_kept()) if scored else 0
            if len(rows["layer"]) != n_rows:
                raise InputError(f"{len(rows['layer'])} rows for {len(scored)} scored samples of {acc._shape}")
        acc._store = SampleStore.restored(
            record.sample_ids, record.skip_reasons, rows=rows, inputs=inputs, spill_dir=spill_dir
        )
        return acc

    def save(self, path: str | os.PathLike, **extra: np.ndarray) -> Path:
        """Write `to_arrays()` as one .npz (uncompressed, no pickle), atomically; `extra`
        members beside them must be named `_...` (e.g. a pipeline's step key `_key`)."""
        return save_arrays(path, self.to_arrays(), extra)

    @classmethod
    def load(cls, path: str | os.PathLike, *, spill_dir: str | os.PathLike | None = None) -> CATAccumulator:
        """The accumulator `save` wrote to `path` (see `from_arrays`)."""
        return cls.from_arrays(load_arrays(path), spill_dir=spill_dir)

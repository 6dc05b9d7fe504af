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

Memory. The inputs `topk` keeps are the token types, positions and D (small) and the pooled
token attention, L x n^2 (L x H x n^2 per head). With n around 100 aligned tokens and 12 layers
that is ~0.5 MB per sample in float32, ~1.4 GB for the paper's 3,000 samples (n = 256: ~9 GB;
per head x12), too much to hold in RAM, so D and the attention go to an anonymous temporary file
(`spill_dir`) and `result()` reads them back sequentially. Merged accumulators share those files
(appended to, never rewritten); a file closes when no accumulator refers to it any more.

Threads. `first_pass` is the per-sample work (scores, token hits, head mean) and changes nothing,
so it runs on worker threads (numpy releases the GIL); `add` folds first passes in, in sample
order, on one thread. `extend` does both over a stream.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from codeprobe.errors import InputError
from codeprobe.files import write_atomic
from codeprobe.prefetch import threaded_map
from codeprobe.probes.cat.dataset import CATSample, SkippedSample, head_mean, score_sample, skipped_rows
from codeprobe.probes.cat.results import MEAN_HEAD, CATResult, CATSampleScores, CATSummary
from codeprobe.probes.cat.score import DEFAULT_QUANTILE, check_quantile
from codeprobe.probes.cat.types import (
    DEFAULT_TOP_K,
    TypeRateAccumulator,
    TypeRates,
    check_strategy,
    select_types,
    token_hits,
)

FORMAT = 1  # version of the `to_arrays` layout
MERGE_ROWS = 512  # scored samples per merged run of rows (one dict per sample costs kilobytes)
ROW_COLUMNS = tuple(f.name for f in fields(CATSampleScores))


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


class _Spill:
    """An anonymous temporary file that arrays are appended to and read back from. Nothing is
    ever rewritten, so accumulators that merged can share it."""

    def __init__(self, directory: str | os.PathLike | None):
        self._file = tempfile.TemporaryFile(dir=directory)

    def append(self, array: np.ndarray) -> int:
        """Write `array` (C order) at the end; returns its byte offset."""
        self._file.seek(0, os.SEEK_END)
        offset = self._file.tell()
        self._file.write(np.ascontiguousarray(array).data)
        return offset

    def read(self, offset: int, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """The (read-only) array of `dtype` and `shape` written at `offset`."""
        self._file.seek(offset)
        dtype = np.dtype(dtype)
        return np.frombuffer(self._file.read(int(np.prod(shape)) * dtype.itemsize), dtype).reshape(shape)


@dataclass(frozen=True)
class _Kept:
    """One sample's inputs kept for `result()` (`topk`): the small parts here, D (int32) and
    the attention in a spill file."""

    sample_id: str
    types: tuple[str, ...]
    positions: np.ndarray
    spill: _Spill
    distance_at: int
    attention_at: int
    attention_shape: tuple[int, ...]
    attention_dtype: np.dtype

    def sample(self) -> CATSample:
        n = len(self.types)
        return CATSample(
            self.sample_id,
            self.types,
            self.positions,
            self.spill.read(self.distance_at, np.dtype(np.int32), (n, n)),
            self.spill.read(self.attention_at, self.attention_dtype, self.attention_shape),
        )


class CATAccumulator:
    """CAT-probing of a dataset, streamed: add samples, merge parts, save, take the result.

    Args:
        language: picks the `paper` list (and is recorded).
        types: frequent-type strategy, `paper`, `topk` or `all` (`codeprobe.probes.cat.types`).
        quantile: q; random_state: seed of the random baseline; top_k: k of `topk`.
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
        self.kept_given = None if kept_types is None else tuple(None if k is None else frozenset(k) for k in kept_types)
        self.head_rows = bool(head_rows)
        self.spill_dir = spill_dir
        self._kept_for_layers: dict[int, list[frozenset[str] | None]] = {}
        self._empty()

    def _empty(self) -> None:
        self._rates = TypeRateAccumulator(self.quantile)
        self._shape: tuple[int, ...] | None = None  # attention's leading shape, (L,) or (L, H)
        self._ids: list[str] = []  # every sample, in order
        self._reasons: list[str | None] = []  # why each was skipped; None: it has inputs
        self._rows: list[dict[str, np.ndarray]] = []  # rows of the scored samples, in merged runs
        self._run: list[dict[str, np.ndarray]] = []  # rows of the last scored samples, not yet merged
        self._kept: list[_Kept] = []  # topk: the inputs of the samples with inputs, in order
        self._spill: _Spill | None = None  # where this accumulator appends

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
            hits = token_hits(head_mean(sample.attention), self.quantile)
            return FirstPass(sample.sample_id, tuple(sample.types), shape, hits, None, sample, self._key())
        mean = head_mean(sample.attention)
        rows = score_sample(
            sample, self._kept_types_of(shape[0]), quantile=self.quantile, random_state=self.random_state, mean=mean
        )
        return FirstPass(
            sample.sample_id, tuple(sample.types), shape, token_hits(mean, self.quantile), rows, None, self._key()
        )

    def add(self, sample: CATSample | SkippedSample | FirstPass) -> CATAccumulator:
        """Add one sample after those added so far; returns self."""
        x = self.first_pass(sample)
        if isinstance(x, SkippedSample):
            self._ids.append(x.sample_id)
            self._reasons.append(x.reason)
            return self
        if x.key != self._key():
            raise InputError(f"sample {x.sample_id!r}: a first pass made with other settings")
        if self._shape is None:
            self._shape = x.shape
        elif x.shape != self._shape:
            raise InputError(f"sample {x.sample_id!r}: attention is {x.shape} x n x n, others {self._shape}")
        self._rates.add(x.types, x.hits)
        if x.sample is not None:
            self._kept.append(self._keep(x.sample))
        else:
            rows = x.rows
            if not self.head_rows and len(x.shape) == 2:
                mean = rows["head"] == MEAN_HEAD
                rows = {k: v[mean] for k, v in rows.items()}
            self._run.append(rows)
            if len(self._run) == MERGE_ROWS:
                self._merge_run()
        self._ids.append(x.sample_id)
        self._reasons.append(None)
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
        self._merge_run()
        other._merge_run()
        self._shape = self._shape or other._shape
        self._rates.merge(other._rates)
        self._ids += other._ids
        self._reasons += other._reasons
        self._rows += other._rows  # never changed in place: shared
        self._kept += other._kept  # their spill files too (appended to only)
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

    def _merge_run(self) -> None:
        if self._run:
            self._rows.append({k: np.concatenate([r[k] for r in self._run]) for k in self._run[0]})
            self._run = []

    def _keep(self, sample: CATSample) -> _Kept:
        if self._spill is None:
            self._spill = _Spill(self.spill_dir)
        a = np.asarray(sample.attention)
        d_at = self._spill.append(np.asarray(sample.distance, dtype=np.int32))
        return _Kept(
            sample.sample_id,
            tuple(sample.types),
            np.asarray(sample.positions, dtype=np.int64),
            self._spill,
            d_at,
            self._spill.append(a),
            a.shape,
            a.dtype,
        )

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
                "random_baseline": "uniform[0,1) cells, rows normalised to sum 1",
                "positional_baseline": "exp(-|p_i - p_j|), p = token index in the snippet",
            },
        )

    def _scored_shape(self) -> tuple[int, ...]:
        if self._shape is None:
            reasons = sorted(set(r for r in self._reasons if r is not None))
            raise InputError(f"no sample could be scored ({'; '.join(reasons) or 'no samples'})")
        return self._shape

    def _heads_kept(self) -> int:
        """Single heads with rows of their own (0: the head mean only)."""
        shape = self._scored_shape()
        return shape[1] if self.head_rows and len(shape) == 2 else 0

    def _samples(self, kept: list[frozenset[str] | None]) -> CATSampleScores:
        n_layers, n_heads = self._scored_shape()[0], self._heads_kept()
        if self.deferred:
            score = lambda s: score_sample(s, kept, quantile=self.quantile, random_state=self.random_state)  # noqa: E731
            scored = threaded_map(score, (k.sample() for k in self._kept))  # read back in order, in this thread
        else:
            self._merge_run()
            scored = iter(self._rows)
        return CATSampleScores.concat(list(self._in_order(scored, n_layers, n_heads)))

    def _in_order(
        self, scored: Iterator[dict[str, np.ndarray]], n_layers: int, n_heads: int
    ) -> Iterator[dict[str, np.ndarray]]:
        """The rows of every sample in order: those of the samples with inputs from `scored`
        (their rows in order, in runs of any length), those of skipped samples made here."""
        per_sample = n_layers * (1 + n_heads)
        part: dict[str, np.ndarray] = {}
        at = end = 0
        run = 0  # samples with inputs not yet given out
        # A last pseudo-sample (no id, skipped) gives out the rows of the last run.
        for sample_id, reason in chain(zip(self._ids, self._reasons), [(None, "")]):
            if reason is None:
                run += 1
                continue
            need = run * per_sample
            while need:
                if at == end:
                    part, at = next(scored), 0
                    end = len(part["layer"])
                take = min(need, end - at)
                yield {k: v[at : at + take] for k, v in part.items()}
                at, need = at + take, need - take
            run = 0
            if sample_id is not None:
                yield skipped_rows(SkippedSample(sample_id, reason), n_layers, n_heads)

    # ------------------------------------------------------------ flat arrays

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything this accumulator holds as flat numpy arrays (no pickle: strings as
        unicode arrays), for an .npz; `from_arrays` restores it exactly.

        Members: `format`; the settings (`setting_*`); `shape`, the attention's leading shape
        ((0,) before any sample with inputs); per sample `sample_id`, `sample_skipped`,
        `sample_skip_reason`; the rate table (`rate_types`, `rate_num`, `rate_hit`,
        `rate_total_tokens`, `rate_n_samples`); then, where samples are scored as they arrive,
        the rows of the samples with inputs (`row_<column>` of `CATSampleScores`), or under
        `topk` their inputs: `input_sizes` (n per sample) indexing the concatenated
        `input_types`, `input_positions` (int64), `input_distance` (int32, n x n each) and
        `input_attention` (shape x n x n each; its dtype is the samples' own, float64 if mixed).
        """
        given = self.kept_given or ()
        rates = self._rates.result()
        arrays = {
            "format": np.array(FORMAT, dtype=np.int64),
            "setting_language": np.array(self.language or "", dtype=str),
            "setting_types": np.array(self.types, dtype=str),
            "setting_quantile": np.array(self.quantile, dtype=np.float64),
            "setting_top_k": np.array(self.top_k, dtype=np.int64),
            "setting_random_state": np.array(self.random_state, dtype=np.int64),
            "setting_head_rows": np.array(self.head_rows),
            "setting_kept_given": np.array(self.kept_given is not None),
            "setting_kept_sizes": np.array([-1 if k is None else len(k) for k in given], dtype=np.int64),
            "setting_kept_names": np.array([t for k in given if k is not None for t in sorted(k)], dtype=str),
            "shape": np.array(self._shape or (), dtype=np.int64),
            "sample_id": np.array(self._ids, dtype=str),
            "sample_skipped": np.array([r is not None for r in self._reasons], dtype=bool),
            "sample_skip_reason": np.array([r or "" for r in self._reasons], dtype=str),
            "rate_types": np.array(rates.types, dtype=str),
            "rate_num": rates.num,
            "rate_hit": rates.hit,
            "rate_total_tokens": np.array(rates.total_tokens, dtype=np.int64),
            "rate_n_samples": np.array(rates.n_samples, dtype=np.int64),
        }
        if self.deferred:
            return {**arrays, **self._input_arrays()}
        self._merge_run()
        rows = CATSampleScores.concat(self._rows).columns()
        return {**arrays, **{f"row_{k}": v.astype(str) if v.dtype == object else v for k, v in rows.items()}}

    def _input_arrays(self) -> dict[str, np.ndarray]:
        samples = [k.sample() for k in self._kept]

        def flat(arrays: list, dtype: Any) -> np.ndarray:
            return (
                np.concatenate([np.ravel(a) for a in arrays]).astype(dtype, copy=False)
                if arrays
                else np.zeros(0, dtype)
            )

        attention = [s.attention for s in samples]
        return {
            "input_sizes": np.array([len(s.types) for s in samples], dtype=np.int64),
            "input_types": np.array([t for s in samples for t in s.types], dtype=str),
            "input_positions": flat([s.positions for s in samples], np.int64),
            "input_distance": flat([s.distance for s in samples], np.int32),
            "input_attention": flat(attention, np.result_type(*attention) if attention else np.float32),
        }

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
        if int(arrays["format"]) != FORMAT:
            raise InputError(f"CAT accumulator arrays of format {int(arrays['format'])}; this version reads {FORMAT}")
        kept_types = None
        if bool(arrays["setting_kept_given"]):
            names, at, kept_types = arrays["setting_kept_names"].tolist(), 0, []
            for size in arrays["setting_kept_sizes"].tolist():
                kept_types.append(None if size < 0 else names[at : at + size])
                at += max(size, 0)
        acc = cls(
            language=str(arrays["setting_language"]) or None,
            types=str(arrays["setting_types"]),
            quantile=float(arrays["setting_quantile"]),
            top_k=int(arrays["setting_top_k"]),
            random_state=int(arrays["setting_random_state"]),
            kept_types=kept_types,
            head_rows=bool(arrays["setting_head_rows"]),
            spill_dir=spill_dir,
        )
        acc._shape = tuple(int(x) for x in arrays["shape"]) or None
        acc._ids = arrays["sample_id"].tolist()
        acc._reasons = [
            r if skipped else None
            for r, skipped in zip(arrays["sample_skip_reason"].tolist(), arrays["sample_skipped"].tolist())
        ]
        acc._rates = TypeRateAccumulator.from_table(
            TypeRates(
                tuple(arrays["rate_types"].tolist()),
                arrays["rate_num"],
                arrays["rate_hit"],
                int(arrays["rate_total_tokens"]),
                int(arrays["rate_n_samples"]),
                acc.quantile,
            )
        )
        n_scored = len(acc._ids) - int(np.count_nonzero(arrays["sample_skipped"]))
        if acc.deferred:
            acc._restore_inputs(arrays, n_scored)
        else:
            rows = {k: arrays[f"row_{k}"] for k in ROW_COLUMNS}
            for k in ("sample_id", "skip_reason"):
                rows[k] = rows[k].astype(object)
            n_rows = n_scored * acc._shape[0] * (1 + acc._heads_kept()) if n_scored else 0
            if len(rows["layer"]) != n_rows:
                raise InputError(f"{len(rows['layer'])} rows for {n_scored} scored samples of {acc._shape}")
            acc._rows = [rows] if n_rows else []
        return acc

    def _restore_inputs(self, arrays: Mapping[str, np.ndarray], n_scored: int) -> None:
        sizes = arrays["input_sizes"].tolist()
        if len(sizes) != n_scored:
            raise InputError(f"inputs of {len(sizes)} samples for {n_scored} scored samples")
        if not sizes:
            return
        types, positions = arrays["input_types"].tolist(), arrays["input_positions"]
        distance, attention = arrays["input_distance"], arrays["input_attention"]
        lead = self._shape if self.head_rows else self._shape[:1]
        per_cell = int(np.prod(lead))
        self._spill = spill = _Spill(self.spill_dir)
        d_at, a_at = spill.append(distance), spill.append(attention)
        t = 0
        for sample_id, n in zip((i for i, r in zip(self._ids, self._reasons) if r is None), sizes):
            self._kept.append(
                _Kept(
                    sample_id,
                    tuple(types[t : t + n]),
                    positions[t : t + n],
                    spill,
                    d_at,
                    a_at,
                    (*lead, n, n),
                    attention.dtype,
                )
            )
            t += n
            d_at += n * n * distance.dtype.itemsize
            a_at += per_cell * n * n * attention.dtype.itemsize

    def save(self, path: str | os.PathLike, **extra: np.ndarray) -> Path:
        """Write `to_arrays()` as one .npz (uncompressed, no pickle), atomically; `extra`
        members beside them must be named `_...` (e.g. a pipeline's step key `_key`)."""
        clash = [k for k in extra if not k.startswith("_")]
        if clash:
            raise InputError(f"extra members of an accumulator's file are named _...: {clash}")
        arrays = {**self.to_arrays(), **{k: np.asarray(v) for k, v in extra.items()}}

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a bare name
                np.savez(f, **arrays)

        return write_atomic(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike, *, spill_dir: str | os.PathLike | None = None) -> CATAccumulator:
        """The accumulator `save` wrote to `path` (see `from_arrays`)."""
        # Each access to an .npz member reads (and checksums) it again: read every array once.
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        return cls.from_arrays(arrays, spill_dir=spill_dir)

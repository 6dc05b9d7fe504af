"""Where a `CATAccumulator` keeps the samples it took, in order (`SampleStore`): each sample's
id and, for a skipped one, why; for one with inputs, either its rows (scored as it arrived) or,
under `topk`, its inputs until the result, in an append-only temporary file (`Spill`).

Memory. The inputs `topk` keeps are the token types, positions and D (small) and the pooled
token attention, L x n^2 (L x H x n^2 per head). With n around 100 aligned tokens and 12 layers
that is ~0.5 MB per sample in float32, ~1.4 GB for the paper's 3,000 samples (n = 256: ~9 GB;
per head x12), too much to hold in RAM, so D and the attention go to an anonymous temporary file
and are read back sequentially. Nothing in a file is ever rewritten, so stores that merged share
their files (appended to only); a file closes when no sample refers to it any more.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from codeprobe.probes.cat.dataset import CATSample, SkippedSample, skipped_rows

MERGE_ROWS = 512  # scored samples per merged run of rows (one dict per sample costs kilobytes)


class Spill:
    """An anonymous temporary file that arrays are appended to and read back from."""

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

    def keep(self, sample: CATSample) -> SpilledSample:
        """Store `sample`: its small parts in memory, D (as int32) and its attention (as it is)
        appended to this file."""
        a = np.asarray(sample.attention)
        d_at = self.append(np.asarray(sample.distance, dtype=np.int32))
        return SpilledSample(
            sample.sample_id,
            tuple(sample.types),
            np.asarray(sample.positions, dtype=np.int64),
            self,
            d_at,
            self.append(a),
            a.shape,
            a.dtype,
        )


@dataclass(frozen=True)
class SpilledSample:
    """One sample's inputs kept by `Spill.keep`: the small parts here, D (int32) and the
    attention in the spill file, at their byte offsets."""

    sample_id: str
    types: tuple[str, ...]
    positions: np.ndarray
    spill: Spill
    distance_at: int
    attention_at: int
    attention_shape: tuple[int, ...]
    attention_dtype: np.dtype

    def sample(self) -> CATSample:
        """The sample as it was kept (D and the attention read back from the file)."""
        n = len(self.types)
        return CATSample(
            self.sample_id,
            self.types,
            self.positions,
            self.spill.read(self.distance_at, np.dtype(np.int32), (n, n)),
            self.spill.read(self.attention_at, self.attention_dtype, self.attention_shape),
        )


class SampleStore:
    """The samples an accumulator took, in order (`merge` puts another store's after).

    ids, reasons: every sample's id and why it was skipped (None: it has inputs); per sample with
    inputs either its rows (`add_rows`, merged into runs of `MERGE_ROWS` samples) or its inputs
    (`add_inputs`, in a spill file in `spill_dir`; `kept`).
    """

    def __init__(self, spill_dir: str | os.PathLike | None = None):
        self.spill_dir = spill_dir
        self.ids: list[str] = []  # every sample, in order
        self.reasons: list[str | None] = []  # why each was skipped; None: it has inputs
        self.kept: list[SpilledSample] = []  # the inputs of the samples with inputs, in order
        self._rows: list[dict[str, np.ndarray]] = []  # rows of the scored samples, in merged runs
        self._run: list[dict[str, np.ndarray]] = []  # rows of the last scored samples, not yet merged
        self._spill: Spill | None = None  # where this store appends

    def add_skipped(self, sample: SkippedSample) -> None:
        """Take a skipped sample."""
        self.ids.append(sample.sample_id)
        self.reasons.append(sample.reason)

    def add_rows(self, sample_id: str, rows: dict[str, np.ndarray]) -> None:
        """Take a sample scored as it arrived: its rows."""
        self._run.append(rows)
        if len(self._run) == MERGE_ROWS:
            self._merge_run()
        self.ids.append(sample_id)
        self.reasons.append(None)

    def add_inputs(self, sample: CATSample) -> None:
        """Take a sample to be scored later: its inputs, spilled."""
        self._keep(sample)
        self.ids.append(sample.sample_id)
        self.reasons.append(None)

    def merge(self, other: SampleStore) -> None:
        """Take `other`'s samples after these (`other` is left as it was)."""
        self._merge_run()
        other._merge_run()
        self.ids += other.ids
        self.reasons += other.reasons
        self._rows += other._rows  # never changed in place: shared
        self.kept += other.kept  # their spill files too (appended to only)

    def rows(self) -> list[dict[str, np.ndarray]]:
        """The rows of the samples taken by `add_rows`, in order, in runs (shared: not to be
        changed)."""
        self._merge_run()
        return self._rows

    def kept_samples(self) -> Iterator[CATSample]:
        """The inputs of the samples taken by `add_inputs`, in order, read back one by one."""
        return (k.sample() for k in self.kept)

    @classmethod
    def restored(
        cls,
        ids: list[str],
        reasons: list[str | None],
        *,
        rows: dict[str, np.ndarray] | None = None,
        inputs: Sequence[CATSample] = (),
        spill_dir: str | os.PathLike | None = None,
    ) -> SampleStore:
        """The store of samples `ids` (skipped for `reasons`) whose samples with inputs have,
        all together, `rows` (None or empty: none) or, one each, `inputs`."""
        store = cls(spill_dir)
        store.ids, store.reasons = ids, reasons
        if rows is not None and len(rows["layer"]):
            store._rows = [rows]
        for sample in inputs:
            store._keep(sample)
        return store

    def in_order(
        self, scored: Iterator[dict[str, np.ndarray]], n_layers: int, n_heads: int
    ) -> Iterator[dict[str, np.ndarray]]:
        """The rows of every sample in order: those of the samples with inputs from `scored`
        (their rows in order, in runs of any length), those of skipped samples made here."""
        per_sample = n_layers * (1 + n_heads)
        part: dict[str, np.ndarray] = {}
        at = end = 0
        run = 0  # samples with inputs not yet given out
        # A last pseudo-sample (no id, skipped) gives out the rows of the last run.
        for sample_id, reason in chain(zip(self.ids, self.reasons), [(None, "")]):
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

    def _merge_run(self) -> None:
        if self._run:
            self._rows.append({k: np.concatenate([r[k] for r in self._run]) for k in self._run[0]})
            self._run = []

    def _keep(self, sample: CATSample) -> None:
        if self._spill is None:
            self._spill = Spill(self.spill_dir)
        self.kept.append(self._spill.keep(sample))

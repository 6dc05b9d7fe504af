"""The flat-array layout of a `CATAccumulator` (`to_arrays` / `from_arrays`) and its .npz file
(`save` / `load`): numpy arrays only, no pickle, strings as unicode arrays.

Members: `format`; the settings (`setting_*`); `shape`, the attention's leading shape ((0,)
before any sample with inputs); per sample `sample_id`, `sample_skipped`, `sample_skip_reason`;
the rate table (`rate_types`, `rate_num`, `rate_hit`, `rate_total_tokens`, `rate_n_samples`);
then, where samples are scored as they arrive, the rows of the samples with inputs
(`row_<column>` of `CATSampleScores`), or under `topk` their inputs: `input_sizes` (n per
sample) indexing the concatenated `input_types`, `input_positions` (int64), `input_distance`
(int32, n x n each) and `input_attention` (shape x n x n each; its dtype is the samples' own,
float64 if mixed).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from codeprobe.errors import InputError
from codeprobe.files import write_npz
from codeprobe.probes.cat.dataset import CATSample
from codeprobe.probes.cat.results import CATSampleScores
from codeprobe.probes.cat.types import TypeRates

FORMAT = 1  # version of the layout
ROW_COLUMNS = tuple(f.name for f in fields(CATSampleScores))


@dataclass(frozen=True)
class ScorerRecord:
    """What every accumulator's arrays hold, whatever its strategy.

    settings: `CATAccumulator`'s keyword arguments (all but `spill_dir`); shape: the attention's
    leading shape, None before any sample with inputs; sample_ids, skip_reasons: per sample, in
    order (None: the sample has inputs); rates: the type-rate table.
    """

    settings: dict[str, Any]
    shape: tuple[int, ...] | None
    sample_ids: list[str]
    skip_reasons: list[str | None]
    rates: TypeRates

    def scored_ids(self) -> list[str]:
        """The ids of the samples with inputs, in order."""
        return [i for i, r in zip(self.sample_ids, self.skip_reasons) if r is None]


def record_arrays(record: ScorerRecord) -> dict[str, np.ndarray]:
    """The members of `record`: format, settings, shape, samples and rate table."""
    s, rates = record.settings, record.rates
    given = s["kept_types"] or ()
    return {
        "format": np.array(FORMAT, dtype=np.int64),
        "setting_language": np.array(s["language"] or "", dtype=str),
        "setting_types": np.array(s["types"], dtype=str),
        "setting_quantile": np.array(s["quantile"], dtype=np.float64),
        "setting_top_k": np.array(s["top_k"], dtype=np.int64),
        "setting_random_state": np.array(s["random_state"], dtype=np.int64),
        "setting_mask": np.array(s["mask"], dtype=str),
        "setting_head_rows": np.array(s["head_rows"]),
        "setting_kept_given": np.array(s["kept_types"] is not None),
        "setting_kept_sizes": np.array([-1 if k is None else len(k) for k in given], dtype=np.int64),
        "setting_kept_names": np.array([t for k in given if k is not None for t in sorted(k)], dtype=str),
        "shape": np.array(record.shape or (), dtype=np.int64),
        "sample_id": np.array(record.sample_ids, dtype=str),
        "sample_skipped": np.array([r is not None for r in record.skip_reasons], dtype=bool),
        "sample_skip_reason": np.array([r or "" for r in record.skip_reasons], dtype=str),
        "rate_types": np.array(rates.types, dtype=str),
        "rate_num": rates.num,
        "rate_hit": rates.hit,
        "rate_total_tokens": np.array(rates.total_tokens, dtype=np.int64),
        "rate_n_samples": np.array(rates.n_samples, dtype=np.int64),
    }


def row_arrays(rows: CATSampleScores) -> dict[str, np.ndarray]:
    """The `row_<column>` members of the rows of the samples with inputs."""
    return {f"row_{k}": v.astype(str) if v.dtype == object else v for k, v in rows.columns().items()}


def input_arrays(samples: Sequence[CATSample]) -> dict[str, np.ndarray]:
    """The `input_*` members of the kept inputs of the samples with inputs (`topk`)."""

    def flat(arrays: list, dtype: Any) -> np.ndarray:
        return np.concatenate([np.ravel(a) for a in arrays]).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)

    attention = [s.attention for s in samples]
    return {
        "input_sizes": np.array([len(s.types) for s in samples], dtype=np.int64),
        "input_types": np.array([t for s in samples for t in s.types], dtype=str),
        "input_positions": flat([s.positions for s in samples], np.int64),
        "input_distance": flat([s.distance for s in samples], np.int32),
        "input_attention": flat(attention, np.result_type(*attention) if attention else np.float32),
    }


def read_record(arrays: Mapping[str, np.ndarray]) -> ScorerRecord:
    """The record in `arrays` (raises KeyError for a missing member).

    Raises:
        InputError: arrays of another format.
    """
    if int(arrays["format"]) != FORMAT:
        raise InputError(f"CAT accumulator arrays of format {int(arrays['format'])}; this version reads {FORMAT}")
    kept_types = None
    if bool(arrays["setting_kept_given"]):
        names, at, kept_types = arrays["setting_kept_names"].tolist(), 0, []
        for size in arrays["setting_kept_sizes"].tolist():
            kept_types.append(None if size < 0 else names[at : at + size])
            at += max(size, 0)
    settings = {
        "language": str(arrays["setting_language"]) or None,
        "types": str(arrays["setting_types"]),
        "quantile": float(arrays["setting_quantile"]),
        "top_k": int(arrays["setting_top_k"]),
        "random_state": int(arrays["setting_random_state"]),
        # Arrays written before the causal convention scored every matrix in full.
        "mask": str(arrays["setting_mask"]) if "setting_mask" in arrays else "full",
        "kept_types": kept_types,
        "head_rows": bool(arrays["setting_head_rows"]),
    }
    rates = TypeRates(
        tuple(arrays["rate_types"].tolist()),
        arrays["rate_num"],
        arrays["rate_hit"],
        int(arrays["rate_total_tokens"]),
        int(arrays["rate_n_samples"]),
        settings["quantile"],
        settings["mask"],
    )
    reasons = [
        r if skipped else None
        for r, skipped in zip(arrays["sample_skip_reason"].tolist(), arrays["sample_skipped"].tolist())
    ]
    shape = tuple(int(x) for x in arrays["shape"]) or None
    return ScorerRecord(settings, shape, arrays["sample_id"].tolist(), reasons, rates)


def read_rows(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The columns of the rows in `arrays` (`row_*`), strings as object arrays."""
    rows = {k: arrays[f"row_{k}"] for k in ROW_COLUMNS}
    for k in ("sample_id", "skip_reason"):
        rows[k] = rows[k].astype(object)
    return rows


def read_inputs(arrays: Mapping[str, np.ndarray], sample_ids: Sequence[str], lead: tuple[int, ...]) -> list[CATSample]:
    """The kept inputs in `arrays` (`input_*`) of the samples `sample_ids`, whose attention is
    `lead` x n x n; views into `arrays`.

    Raises:
        InputError: inputs of another number of samples.
    """
    sizes = arrays["input_sizes"].tolist()
    if len(sizes) != len(sample_ids):
        raise InputError(f"inputs of {len(sizes)} samples for {len(sample_ids)} scored samples")
    if not sizes:
        return []
    types, positions = arrays["input_types"].tolist(), arrays["input_positions"]
    distance, attention = arrays["input_distance"], arrays["input_attention"]
    per_cell = int(np.prod(lead))
    samples, t, d_at, a_at = [], 0, 0, 0
    for sample_id, n in zip(sample_ids, sizes):
        samples.append(
            CATSample(
                sample_id,
                tuple(types[t : t + n]),
                positions[t : t + n],
                distance[d_at : d_at + n * n].reshape(n, n),
                attention[a_at : a_at + per_cell * n * n].reshape(*lead, n, n),
            )
        )
        t, d_at, a_at = t + n, d_at + n * n, a_at + per_cell * n * n
    return samples


def save_arrays(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> Path:
    """Write `arrays` and `extra` as one .npz (uncompressed, no pickle), atomically; `extra`
    members beside them must be named `_...` (e.g. a pipeline's step key `_key`)."""
    clash = [k for k in extra if not k.startswith("_")]
    if clash:
        raise InputError(f"extra members of an accumulator's file are named _...: {clash}")
    return write_npz(path, {**arrays, **{k: np.asarray(v) for k, v in extra.items()}})


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every member of the .npz at `path`, each read once."""
    # Each access to an .npz member reads (and checksums) it again: read every array once.
    with np.load(path, allow_pickle=False) as z:
        return {name: z[name] for name in z.files}

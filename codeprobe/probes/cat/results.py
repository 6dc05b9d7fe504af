"""Result tables of CAT-probing: per sample and layer, and the per-layer summary."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from codeprobe.prefetch import threaded_map
from codeprobe.probes.cat.types import TypeRates
from codeprobe.uncertainty import Interval, mean_ci, paired_difference

MEAN_HEAD = -1  # `head` value of rows scored on the head-mean attention (the paper's score)

# Why a (sample, layer) row has no score.
SKIP_NO_KEPT_TOKENS = "no_kept_tokens"  # no aligned token has a kept type
SKIP_EMPTY_UNION = "empty_union"  # M_A or M_D is empty (e.g. one or two tokens)


def _arrow_table(columns: dict[str, np.ndarray], metadata: dict[str, Any] | None):
    import pyarrow as pa

    arrays = {k: pa.array(v.tolist() if v.dtype == object else v) for k, v in columns.items()}
    meta = {"codeprobe": json.dumps(metadata, sort_keys=True)} if metadata else None
    return pa.table(arrays, metadata=meta)


@dataclass(frozen=True)
class CATSampleScores:
    """One row per (sample, layer, head), as numpy columns of equal length.

    sample_id: str; layer: 0-based transformer layer; head: head index, or MEAN_HEAD (-1) for
    the head-mean attention; n_aligned: tokens aligned to subwords; n_tokens: tokens kept by the
    type filter (the n of the score); score, random_baseline, positional_baseline: CAT-scores
    in [0, 1], NaN when skipped; skip_reason: "" when scored.
    """

    sample_id: np.ndarray
    layer: np.ndarray
    head: np.ndarray
    n_aligned: np.ndarray
    n_tokens: np.ndarray
    score: np.ndarray
    random_baseline: np.ndarray
    positional_baseline: np.ndarray
    skip_reason: np.ndarray

    def __len__(self) -> int:
        return int(self.layer.size)

    def columns(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def concat(cls, parts: list[dict[str, np.ndarray]]) -> CATSampleScores:
        """Build from per-sample column dicts (see `sample_rows`)."""
        names = [f.name for f in fields(cls)]
        if not parts:
            empty = {
                "sample_id": object,
                "skip_reason": object,
                "score": np.float64,
                "random_baseline": np.float64,
                "positional_baseline": np.float64,
            }
            return cls(**{k: np.zeros(0, dtype=empty.get(k, np.int32)) for k in names})
        return cls(**{k: np.concatenate([p[k] for p in parts]) for k in names})

    def to_arrow(self, metadata: dict[str, Any] | None = None):
        """A pyarrow.Table; `metadata` (JSON-able) goes under the schema key b"codeprobe"."""
        return _arrow_table(self.columns(), metadata)

    def to_parquet(self, path: str | Path, metadata: dict[str, Any] | None = None) -> None:
        import pyarrow.parquet as pq

        pq.write_table(self.to_arrow(metadata), str(path))


def sample_rows(
    sample_id: str,
    n_aligned: int,
    n_tokens: np.ndarray,
    score: np.ndarray,
    random_baseline: np.ndarray,
    positional_baseline: np.ndarray,
    skip_reason: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Rows of one sample. n_tokens, random/positional: (L,); score: (L,) or (L, 1 + H) with
    column 0 = head mean and column 1 + h = head h. Empty skip reasons are derived from the score
    (NaN: no kept tokens when n_tokens == 0, else empty union)."""
    s = np.asarray(score, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    n_layers, n_cols = s.shape
    heads = np.concatenate([[MEAN_HEAD], np.arange(n_cols - 1)]).astype(np.int32)
    k = np.asarray(n_tokens, dtype=np.int32)
    if skip_reason is None:
        reason = np.where(k == 0, SKIP_NO_KEPT_TOKENS, SKIP_EMPTY_UNION).astype(object)
        reason = np.where(np.isnan(s), reason[:, None], "").astype(object)
    else:
        reason = np.broadcast_to(np.asarray(skip_reason, dtype=object)[:, None], s.shape)
    rep = lambda v, dt: np.repeat(np.asarray(v, dtype=dt), n_cols)  # noqa: E731 - per layer -> rows
    return {
        "sample_id": np.full(n_layers * n_cols, str(sample_id), dtype=object),
        "layer": rep(np.arange(n_layers), np.int32),
        "head": np.tile(heads, n_layers),
        "n_aligned": np.full(n_layers * n_cols, n_aligned, dtype=np.int32),
        "n_tokens": rep(k, np.int32),
        "score": s.ravel(),
        "random_baseline": rep(random_baseline, np.float64),
        "positional_baseline": rep(positional_baseline, np.float64),
        "skip_reason": np.asarray(reason, dtype=object).ravel(),
    }


def _interval(interval: Interval) -> tuple[float, float]:
    return (interval.low, interval.high)


def _mean(values: np.ndarray) -> float:
    """Mean of the non-NaN values; NaN if there are none."""
    v = values[~np.isnan(values)]
    return float(v.mean()) if v.size else float("nan")


@dataclass(frozen=True)
class CATSummary:
    """One row per (layer, head): the CAT-score of the dataset (macro mean over used samples)
    and both baselines averaged over the same samples.

    n_used / n_skipped: samples scored / not; skip_reasons: "reason=count; ..." ("" if none);
    score_std: standard deviation of the per-sample scores (ddof 0).

    Uncertainty (`codeprobe.uncertainty`, 95% percentile bootstrap over samples, seeded):
    score_ci, random_ci, positional_ci: (rows, 2) intervals of the three means;
    minus_positional, minus_random: mean per-sample difference score - baseline, with
    paired-bootstrap intervals minus_positional_ci, minus_random_ci (rows, 2). Baseline and
    difference intervals are computed for the head-mean rows only (NaN for single heads).
    """

    layer: np.ndarray
    head: np.ndarray
    n_used: np.ndarray
    n_skipped: np.ndarray
    score: np.ndarray
    score_std: np.ndarray
    random_baseline: np.ndarray
    positional_baseline: np.ndarray
    skip_reasons: np.ndarray
    score_ci: np.ndarray
    random_ci: np.ndarray
    positional_ci: np.ndarray
    minus_positional: np.ndarray
    minus_positional_ci: np.ndarray
    minus_random: np.ndarray
    minus_random_ci: np.ndarray

    def __len__(self) -> int:
        return int(self.layer.size)

    def columns(self) -> dict[str, np.ndarray]:
        """Flat columns: each (rows, 2) interval becomes `<name>_low` and `<name>_high`."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v.ndim == 2:
                out[f"{f.name}_low"], out[f"{f.name}_high"] = v[:, 0], v[:, 1]
            else:
                out[f.name] = v
        return out

    @classmethod
    def from_samples(cls, rows: CATSampleScores, random_state: int = 0) -> CATSummary:
        keys = sorted(set(zip(rows.layer.tolist(), rows.head.tolist())), key=lambda k: (k[0], k[1]))
        out: dict[str, list] = {f.name: [] for f in fields(cls)}
        # One (layer, head) row per task: each interval has its own seeded stream, so threads
        # give the same numbers as a loop (numpy releases the GIL while it resamples).
        for row in threaded_map(lambda key: _summary_row(rows, *key, random_state), keys):
            for name, value in row.items():
                out[name].append(value)
        dtypes = {
            "layer": np.int32,
            "head": np.int32,
            "n_used": np.int64,
            "n_skipped": np.int64,
            "skip_reasons": object,
        }
        arrays = {k: np.asarray(v, dtype=dtypes.get(k, np.float64)) for k, v in out.items()}
        for k, v in arrays.items():
            if k.endswith("_ci") and v.size == 0:
                arrays[k] = v.reshape(0, 2)
        return cls(**arrays)

    def to_arrow(self, metadata: dict[str, Any] | None = None):
        return _arrow_table(self.columns(), metadata)

    def format(self, head: int = MEAN_HEAD) -> str:
        """Printable per-layer table for one head (default: the head mean)."""
        lines = [f"{'layer':>5}  {'score':>7}  {'random':>7}  {'position':>8}  {'used':>6}  {'skipped':>7}"]
        for i in np.flatnonzero(self.head == head):
            lines.append(
                f"{self.layer[i]:>5}  {self.score[i]:>7.4f}  {self.random_baseline[i]:>7.4f}  "
                f"{self.positional_baseline[i]:>8.4f}  {self.n_used[i]:>6}  {self.n_skipped[i]:>7}"
                + (f"  ({self.skip_reasons[i]})" if self.skip_reasons[i] else "")
            )
        return "\n".join(lines)


def _summary_row(rows: CATSampleScores, layer: int, head: int, random_state: int) -> dict[str, Any]:
    """The `CATSummary` fields of one (layer, head)."""
    sel = (rows.layer == layer) & (rows.head == head)
    used = sel & ~np.isnan(rows.score)
    reasons = Counter(rows.skip_reason[sel & ~used].tolist())
    score, rand, pos = rows.score[used], rows.random_baseline[used], rows.positional_baseline[used]
    seed = (random_state, layer, head + 1)  # per-row stream, independent of row order
    mean_head = head == MEAN_HEAD
    nan2 = Interval(np.nan, np.nan, np.nan, 0)
    diff_pos = paired_difference(score, pos, random_state=seed) if mean_head else nan2
    diff_rand = paired_difference(score, rand, random_state=seed) if mean_head else nan2
    return {
        "layer": layer,
        "head": head,
        "n_used": int(used.sum()),
        "n_skipped": int((sel & ~used).sum()),
        "score": _mean(score),
        "score_std": float(score.std()) if score.size else np.nan,
        "random_baseline": _mean(rand),
        "positional_baseline": _mean(pos),
        "skip_reasons": "; ".join(f"{r}={c}" for r, c in sorted(reasons.items())),
        "score_ci": _interval(mean_ci(score, random_state=seed)),
        "random_ci": _interval(mean_ci(rand, random_state=seed) if mean_head else nan2),
        "positional_ci": _interval(mean_ci(pos, random_state=seed) if mean_head else nan2),
        "minus_positional": diff_pos.mean,
        "minus_positional_ci": _interval(diff_pos),
        "minus_random": diff_rand.mean,
        "minus_random_ci": _interval(diff_rand),
    }


@dataclass(frozen=True)
class CATResult:
    """Everything one CAT-probing run produced.

    samples: per (sample, layer, head) rows; summary: per (layer, head);
    rates: the frequent-type table of the scored samples (per layer);
    kept_types: per layer, the kept type names (sorted), or None for all types;
    settings: model, language, strategy, distance, quantile, versions, ... (JSON-able).
    """

    samples: CATSampleScores
    summary: CATSummary
    rates: TypeRates
    kept_types: tuple[tuple[str, ...] | None, ...]
    settings: dict[str, Any]

    def metadata(self) -> dict[str, Any]:
        """Settings plus kept types: what is stored with every table written."""
        return {**self.settings, "kept_types": [list(k) if k is not None else None for k in self.kept_types]}

    def to_parquet(self, path: str | Path) -> None:
        """Write the per-sample table as Parquet, with `metadata()` in the schema."""
        self.samples.to_parquet(path, self.metadata())

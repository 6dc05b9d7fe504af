"""Dataset-level CAT-probing over precomputed per-snippet inputs (no model needed here).

Flow. `topk` keeps, per layer, the types with the highest rates over the *whole* dataset, so no
sample can be scored before every sample has been seen. Pass 1 streams the samples once (each
sample comes from one forward pass of the model), accumulating the rate table; pass 2 scores.
For `paper` and `all` the kept types are known up front, so samples are scored in pass 1 and
nothing is kept.

For `topk` the per-sample inputs must survive until pass 2: the token types, positions and D
(small) and the pooled token attention, L x n^2 float32 (L x H x n^2 per head). With n around
100 aligned tokens and 12 layers that is ~0.5 MB per sample, ~1.4 GB for the paper's 3,000
samples (n = 256: ~9 GB; per head x12), too much to hold in RAM, so pass 1 spills D and the
attention to an anonymous temporary file and pass 2 reads them back sequentially. Re-running
the model instead would double the dominant cost (the forward pass).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from codeprobe.errors import InputError
from codeprobe.probes.cat.baselines import positional_attention, random_attention
from codeprobe.probes.cat.results import CATResult, CATSampleScores, CATSummary, sample_rows
from codeprobe.probes.cat.score import DEFAULT_QUANTILE, cat_scores, check_quantile
from codeprobe.probes.cat.types import DEFAULT_TOP_K, TypeRateAccumulator, check_strategy, select_types


@dataclass(frozen=True)
class CATSample:
    """The inputs of one snippet, over its aligned tokens (leaves with at least one subword),
    in source order.

    sample_id: the snippet's id in the results.
    types: (n,) leaf types (tree-sitter `node.type`).
    positions: (n,) int indices of these tokens in the snippet's full token sequence.
    distance: (n, n) int tree distances (hops) between them, U-AST or AST.
    attention: (L, n, n) head-mean token attention, or (L, H, n, n) per head, float.
    """

    sample_id: str
    types: Sequence[str]
    positions: np.ndarray
    distance: np.ndarray
    attention: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.types)
        a, d = np.shape(self.attention), np.shape(self.distance)
        if d != (n, n) or len(a) not in (3, 4) or a[-2:] != (n, n) or np.shape(self.positions) != (n,):
            raise InputError(
                f"sample {self.sample_id!r}: {n} types need positions (n,), distance (n, n) and "
                f"attention (L, [H,] n, n); got {np.shape(self.positions)}, {d}, {a}"
            )


@dataclass(frozen=True)
class SkippedSample:
    """A snippet that produced no inputs (parse or alignment failure, ...); `reason` says why."""

    sample_id: str
    reason: str


def head_mean(attention: np.ndarray) -> np.ndarray:
    """(L, n, n) float64 head-mean attention from (L, n, n) or (L, H, n, n)."""
    a = np.asarray(attention)
    if a.ndim == 3:
        return a.astype(np.float64)
    # A plain float64 reduction: several times faster than a.mean(axis=1, dtype=float64).
    return np.add.reduce(a, axis=1, dtype=np.float64) / a.shape[1]


def score_sample(
    sample: CATSample,
    kept_types: Sequence[frozenset[str] | None],
    *,
    quantile: float = DEFAULT_QUANTILE,
    random_state: int = 0,
) -> dict[str, np.ndarray]:
    """Score one sample for all layers (and heads): the rows of `CATSampleScores`.

    kept_types: per layer, the kept type names, or None for all. Layers sharing a set are
    scored in one vectorised call. The baselines are built over all aligned tokens (random
    seeded by (random_state, sample id)) and cut to the kept tokens of each layer.
    """
    a = np.asarray(sample.attention)
    n_layers = a.shape[0]
    if len(kept_types) != n_layers:
        raise InputError(f"sample {sample.sample_id!r} has {n_layers} layers, got {len(kept_types)} type sets")
    # Column 0: head mean (the paper's score); columns 1..H: single heads.
    stack = head_mean(a)[:, None] if a.ndim == 3 else np.concatenate([head_mean(a)[:, None], a], axis=1)
    n = len(sample.types)
    dist = np.asarray(sample.distance)
    rand = random_attention(n, random_state, sample.sample_id)
    pos = positional_attention(sample.positions)

    score = np.full(stack.shape[:2], np.nan)
    n_tokens = np.zeros(n_layers, np.int32)
    rb, pb = np.full(n_layers, np.nan), np.full(n_layers, np.nan)
    groups: dict[frozenset[str] | None, list[int]] = {}
    for layer, kept in enumerate(kept_types):
        groups.setdefault(kept, []).append(layer)
    for kept, layers in groups.items():
        idx = np.arange(n) if kept is None else np.flatnonzero([t in kept for t in sample.types])
        n_tokens[layers] = idx.size
        if idx.size == 0:
            continue
        rows, cols = idx[:, None], idx[None, :]
        # One call for the model's matrices of these layers and both baselines: they share D.
        mats = np.concatenate(
            [stack[layers][..., rows, cols].reshape(-1, idx.size, idx.size), rand[rows, cols][None], pos[rows, cols][None]]
        )
        s = cat_scores(mats, dist[rows, cols], quantile)
        score[layers] = s[:-2].reshape(len(layers), -1)
        rb[layers], pb[layers] = s[-2], s[-1]
    return sample_rows(sample.sample_id, n, n_tokens, score, rb, pb)


class _Spill:
    """Per-sample inputs kept for pass 2: small parts in memory, D and attention in a temp file."""

    def __init__(self, directory: str | None):
        self._file = tempfile.TemporaryFile(dir=directory)
        self._entries: list[tuple[str, tuple[str, ...], np.ndarray, int, tuple, np.dtype, int]] = []

    def put(self, sample: CATSample) -> None:
        a = np.ascontiguousarray(sample.attention)
        d = np.ascontiguousarray(sample.distance, dtype=np.int32)
        offset = self._file.tell()
        self._file.write(d.tobytes())
        self._file.write(a.tobytes())
        self._entries.append(
            (sample.sample_id, tuple(sample.types), np.asarray(sample.positions), offset, a.shape, a.dtype, d.size)
        )

    def __iter__(self):
        self._file.flush()
        for sample_id, types, positions, offset, shape, dtype, d_size in self._entries:
            self._file.seek(offset)
            n = len(types)
            d = np.frombuffer(self._file.read(4 * d_size), np.int32).reshape(n, n)
            a = np.frombuffer(self._file.read(int(np.prod(shape)) * dtype.itemsize), dtype).reshape(shape)
            yield CATSample(sample_id, types, positions, d, a)

    def close(self) -> None:
        self._file.close()


def score_samples(
    samples: Iterable[CATSample | SkippedSample],
    *,
    language: str | None,
    types: str = "paper",
    quantile: float = DEFAULT_QUANTILE,
    top_k: int = DEFAULT_TOP_K,
    random_state: int = 0,
    settings: dict[str, Any] | None = None,
    spill_dir: str | None = None,
) -> CATResult:
    """CAT-scores of a dataset: per-sample rows, per-layer summary and the type-rate table.

    samples: streamed once, in order; each a `CATSample` or a `SkippedSample`. All samples
        need the same number of layers (and heads, if per head).
    language: picks the `paper` list; types: `paper`, `topk` or `all`; top_k: k of `topk`.
    settings: recorded in the result (model, versions, ...), next to these arguments.
    Raises InputError if no sample has inputs.
    """
    q = check_quantile(quantile)
    check_strategy(types, language)
    rates_acc = TypeRateAccumulator(q)
    spill = _Spill(spill_dir) if types == "topk" else None
    # Per sample, in order: its rows, why it was skipped, or (topk) None until pass 2 scores it.
    parts: list[dict[str, np.ndarray] | SkippedSample | None] = []
    shape: tuple[int, ...] | None = None  # (L,) or (L, H): all samples must agree
    kept: list[frozenset[str] | None] | None = None
    try:
        for sample in samples:
            if isinstance(sample, SkippedSample):
                parts.append(sample)
                continue
            a_shape = np.shape(sample.attention)[:-2]
            if shape is None:
                shape = a_shape
                if types != "topk":
                    kept = select_types(types, language=language, n_layers=shape[0], top_k=top_k)
            elif a_shape != shape:
                raise InputError(f"sample {sample.sample_id!r}: attention is {a_shape} x n x n, others {shape}")
            rates_acc.update(sample.types, head_mean(sample.attention))
            if spill is None:
                parts.append(score_sample(sample, kept, quantile=q, random_state=random_state))
            else:
                spill.put(sample)
                parts.append(None)
        if shape is None:
            reasons = sorted({p.reason for p in parts if isinstance(p, SkippedSample)})
            raise InputError(f"no sample could be scored ({'; '.join(reasons) or 'no samples'})")
        rates = rates_acc.result()
        if spill is not None:
            kept = select_types(types, language=language, rates=rates, n_layers=shape[0], top_k=top_k)
            scored = iter(spill)
            parts = [
                score_sample(next(scored), kept, quantile=q, random_state=random_state) if p is None else p
                for p in parts
            ]
    finally:
        if spill is not None:
            spill.close()

    n_layers, n_cols = shape[0], 1 + (shape[1] if len(shape) == 2 else 0)
    nan = np.full(n_layers, np.nan)
    rows = CATSampleScores.concat(
        [
            p if not isinstance(p, SkippedSample)
            else sample_rows(p.sample_id, 0, np.zeros(n_layers), np.full((n_layers, n_cols), np.nan), nan, nan,
                             np.full(n_layers, p.reason, dtype=object))
            for p in parts
        ]
    )
    return CATResult(
        samples=rows,
        summary=CATSummary.from_samples(rows, random_state),
        rates=rates,
        kept_types=tuple(tuple(sorted(k)) if k is not None else None for k in kept),
        settings={
            **(settings or {}),
            "language": language,
            "types": types,
            "top_k": top_k if types == "topk" else None,
            "quantile": q,
            "random_state": random_state,
            "random_baseline": "uniform[0,1) cells, rows normalised to sum 1",
            "positional_baseline": "exp(-|p_i - p_j|), p = token index in the snippet",
        },
    )

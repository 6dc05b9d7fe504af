"""Dataset-level CAT-probing over precomputed per-snippet inputs (no model needed here).

Flow. `topk` keeps, per layer, the types with the highest rates over the *whole* dataset, so no
sample can be scored before every sample has been seen. Pass 1 streams the samples once (each
sample comes from one forward pass of the model), accumulating the rate table; pass 2 scores.
For `paper` and `all` the kept types are known up front, so samples are scored in pass 1 and
nothing is kept. `first_pass` is that step for one sample; a run of samples scored apart (a
pipeline shard) becomes rows and a rate table that `cat_result` combines with other runs into
the same result as one `score_samples` over all of them.

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
from codeprobe.prefetch import threaded_map
from codeprobe.probes.cat.baselines import positional_attention, random_attention
from codeprobe.probes.cat.results import CATResult, CATSampleScores, CATSummary, sample_rows
from codeprobe.probes.cat.score import DEFAULT_QUANTILE, check_quantile, iou_scores, near_mask
from codeprobe.probes.cat.types import (
    DEFAULT_TOP_K,
    TypeRateAccumulator,
    TypeRates,
    check_strategy,
    select_types,
    token_hits,
)


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
    return _scored_rows(sample, head_mean(sample.attention), kept_types, quantile, random_state)


def _scored_rows(sample: CATSample, mean: np.ndarray, kept_types: Sequence[frozenset[str] | None],
                 quantile: float, random_state: int) -> dict[str, np.ndarray]:
    """`score_sample`, given the sample's `head_mean` (computed once by callers that need it twice)."""
    a = np.asarray(sample.attention)
    n_layers = a.shape[0]
    if len(kept_types) != n_layers:
        raise InputError(f"sample {sample.sample_id!r} has {n_layers} layers, got {len(kept_types)} type sets")
    # Column 0: head mean (the paper's score); columns 1..H: single heads (scored as stored,
    # float32, which gives the scores of their float64 copy: see `cat_scores`).
    heads = a if a.ndim == 4 else None
    n = len(sample.types)
    dist = np.asarray(sample.distance)
    rand = random_attention(n, random_state, sample.sample_id)
    pos = positional_attention(sample.positions)

    score = np.full((n_layers, 1 if heads is None else 1 + heads.shape[1]), np.nan)
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
        rows, cols, m = idx[:, None], idx[None, :], idx.size * idx.size
        near = near_mask(dist[rows, cols], quantile)  # M_D, shared by the layers' matrices and both baselines
        means = np.concatenate([mean[layers][:, rows, cols], rand[rows, cols][None], pos[rows, cols][None]])
        s = iou_scores(means.reshape(-1, m), near, quantile)
        score[layers, 0] = s[:-2]
        rb[layers], pb[layers] = s[-2], s[-1]
        if heads is not None:
            of_layers = heads if len(layers) == n_layers else heads[layers]
            score[layers, 1:] = iou_scores(of_layers[..., rows, cols].reshape(-1, m), near, quantile).reshape(len(layers), -1)
    return sample_rows(sample.sample_id, n, n_tokens, score, rb, pb)


@dataclass(frozen=True)
class FirstPass:
    """Pass 1 of one sample: what the rate table needs, and its rows when the kept types are
    known.

    sample_id, types: the sample's; hits: int64 (L, n), its `token_hits` on the head-mean
    attention; rows: its `sample_rows` (head mean and, for per-head attention, every head), or
    None when no kept types were given (`topk`, before the whole dataset is seen).
    """

    sample_id: str
    types: tuple[str, ...]
    hits: np.ndarray
    rows: dict[str, np.ndarray] | None


def first_pass(
    sample: CATSample,
    kept_types: Sequence[frozenset[str] | None] | None,
    *,
    quantile: float = DEFAULT_QUANTILE,
    random_state: int = 0,
) -> FirstPass:
    """Pass 1 of `score_samples` on one sample (thread-safe; numpy releases the GIL): its token
    hits and, unless `kept_types` is None, its rows (see `score_sample`)."""
    mean = head_mean(sample.attention)
    rows = None if kept_types is None else _scored_rows(sample, mean, kept_types, quantile, random_state)
    return FirstPass(sample.sample_id, tuple(sample.types), token_hits(mean, quantile), rows)


def skipped_rows(sample: SkippedSample, n_layers: int, n_heads: int = 0) -> dict[str, np.ndarray]:
    """The rows of a skipped sample: NaN scores with its reason, for `n_layers` layers and the
    head mean (plus `n_heads` heads)."""
    nan = np.full(n_layers, np.nan)
    return sample_rows(sample.sample_id, 0, np.zeros(n_layers), np.full((n_layers, 1 + n_heads), np.nan), nan, nan,
                       np.full(n_layers, sample.reason, dtype=object))


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


_MERGE_ROWS = 512  # scored samples per merged part of `score_samples`


def _merged(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Consecutive samples' rows (`sample_rows`) as one dict of arrays, in order."""
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


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
    shape: tuple[int, ...] | None = None  # (L,) or (L, H): all samples must agree
    kept: list[frozenset[str] | None] | None = None

    def checked() -> Iterable[CATSample | SkippedSample]:
        """The samples in order, after the sequential work (shape check, spill)."""
        nonlocal shape, kept
        for sample in samples:
            if not isinstance(sample, SkippedSample):
                a_shape = np.shape(sample.attention)[:-2]
                if shape is None:
                    shape = a_shape
                    if types != "topk":
                        kept = select_types(types, language=language, n_layers=shape[0], top_k=top_k)
                elif a_shape != shape:
                    raise InputError(f"sample {sample.sample_id!r}: attention is {a_shape} x n x n, others {shape}")
                if spill is not None:
                    spill.put(sample)
            yield sample

    def scored(x: Any) -> Any:  # on a worker thread: numpy releases the GIL while it scores
        return score_sample(x, kept, quantile=q, random_state=random_state) if isinstance(x, CATSample) else x

    def pass_1(x: CATSample | SkippedSample) -> FirstPass | SkippedSample:  # on a worker thread
        if isinstance(x, SkippedSample):
            return x
        return first_pass(x, None if spill is not None else kept, quantile=q, random_state=random_state)

    try:
        # Per sample, in order: its rows, why it was skipped, or (topk) None until pass 2 scores it.
        # Runs of scored samples are merged as they come: one dict of arrays per sample would
        # cost kilobytes each over a long stream.
        parts: list[dict[str, np.ndarray] | SkippedSample | None] = []
        run: list[dict[str, np.ndarray]] = []
        for out in threaded_map(pass_1, checked()):
            part = out
            if isinstance(out, FirstPass):
                rates_acc.add(out.types, out.hits)
                part = out.rows
            if isinstance(part, dict):
                run.append(part)
            if run and (not isinstance(part, dict) or len(run) == _MERGE_ROWS):
                parts.append(_merged(run))
                run = []
            if not isinstance(part, dict):
                parts.append(part)
        if run:
            parts.append(_merged(run))
        if shape is None:
            reasons = sorted({p.reason for p in parts if isinstance(p, SkippedSample)})
            raise InputError(f"no sample could be scored ({'; '.join(reasons) or 'no samples'})")
        rates = rates_acc.result()
        if spill is not None:
            kept = select_types(types, language=language, rates=rates, n_layers=shape[0], top_k=top_k)
            spilled = iter(spill)  # read back in order, in this thread
            parts = list(threaded_map(scored, (next(spilled) if p is None else p for p in parts)))
    finally:
        if spill is not None:
            spill.close()

    n_heads = shape[1] if len(shape) == 2 else 0
    rows = CATSampleScores.concat([skipped_rows(p, shape[0], n_heads) if isinstance(p, SkippedSample) else p
                                   for p in parts])
    return cat_result(rows, rates, kept, language=language, types=types, top_k=top_k, quantile=q,
                      random_state=random_state, settings=settings)


def cat_result(
    rows: CATSampleScores,
    rates: TypeRates,
    kept_types: Sequence[frozenset[str] | None],
    *,
    language: str | None,
    types: str,
    top_k: int,
    quantile: float,
    random_state: int,
    settings: dict[str, Any] | None,
) -> CATResult:
    """The `CATResult` of scored rows (all samples, skipped ones included, in order) and their
    rate table: the per-layer summary with its bootstrap intervals, and the settings record.
    `score_samples` ends with it; a pipeline calls it on the rows of all its shards."""
    return CATResult(
        samples=rows,
        summary=CATSummary.from_samples(rows, random_state),
        rates=rates,
        kept_types=tuple(tuple(sorted(k)) if k is not None else None for k in kept_types),
        settings={
            **(settings or {}),
            "language": language,
            "types": types,
            "top_k": top_k if types == "topk" else None,
            "quantile": quantile,
            "random_state": random_state,
            "random_baseline": "uniform[0,1) cells, rows normalised to sum 1",
            "positional_baseline": "exp(-|p_i - p_j|), p = token index in the snippet",
        },
    )

"""The samples of CAT-probing and the scores of one sample (no model needed here).

A `CATSample` holds what the model and the parser gave for one snippet (types, positions, tree
distances, token attention); `score_sample` turns it into its rows, one per layer (and head).
Dataset-level scoring (type rates, the kept types of a strategy, the summary) is the streaming
`codeprobe.probes.cat.scorer.CATAccumulator`; `score_samples` runs it over a stream of samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codeprobe.errors import InputError
from codeprobe.probes.cat.baselines import positional_attention, random_attention
from codeprobe.probes.cat.results import CATResult, sample_rows
from codeprobe.probes.cat.score import DEFAULT_QUANTILE, cell_index, check_mask, iou_scores, near_mask
from codeprobe.probes.cat.types import DEFAULT_TOP_K


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
    mask: str = "full",
    mean: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Score one sample for all layers (and heads): the rows of `CATSampleScores`.

    kept_types: per layer, the kept type names, or None for all. Layers sharing a set are
    scored in one vectorised call. The baselines are built over all aligned tokens (random
    seeded by (random_state, sample id)) and cut to the kept tokens of each layer.
    mask: the cells scored, "full" or "causal" (pairs j <= i; `codeprobe.probes.cat.score`),
        for the model's attention and both baselines alike.
    mean: the sample's `head_mean`, where the caller has computed it already.
    """
    check_mask(mask, resolved=True)
    mean = head_mean(sample.attention) if mean is None else mean
    a = np.asarray(sample.attention)
    n_layers = a.shape[0]
    if len(kept_types) != n_layers:
        raise InputError(f"sample {sample.sample_id!r} has {n_layers} layers, got {len(kept_types)} type sets")
    # Column 0: head mean (the paper's score); columns 1..H: single heads (scored as stored,
    # float32, which gives the scores of their float64 copy: see `cat_scores`).
    heads = a if a.ndim == 4 else None
    n = len(sample.types)
    dist = np.asarray(sample.distance)
    rand = random_attention(n, random_state, sample.sample_id, mask)
    pos = positional_attention(sample.positions, mask)

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
        rows, cols = cell_index(idx, mask)  # the scored cells among the kept tokens
        near = near_mask(dist[rows, cols], quantile)  # M_D, shared by the layers' matrices and both baselines
        m = near.shape[1]
        means = np.concatenate([mean[layers][:, rows, cols], rand[rows, cols][None], pos[rows, cols][None]])
        s = iou_scores(means.reshape(-1, m), near, quantile)
        score[layers, 0] = s[:-2]
        rb[layers], pb[layers] = s[-2], s[-1]
        if heads is not None:
            of_layers = heads if len(layers) == n_layers else heads[layers]
            score[layers, 1:] = iou_scores(of_layers[..., rows, cols].reshape(-1, m), near, quantile).reshape(
                len(layers), -1
            )
    return sample_rows(sample.sample_id, n, n_tokens, score, rb, pb)


def skipped_rows(sample: SkippedSample, n_layers: int, n_heads: int = 0) -> dict[str, np.ndarray]:
    """The rows of a skipped sample: NaN scores with its reason, for `n_layers` layers and the
    head mean (plus `n_heads` heads)."""
    nan = np.full(n_layers, np.nan)
    return sample_rows(
        sample.sample_id,
        0,
        np.zeros(n_layers),
        np.full((n_layers, 1 + n_heads), np.nan),
        nan,
        nan,
        np.full(n_layers, sample.reason, dtype=object),
    )


def score_samples(
    samples: Iterable[CATSample | SkippedSample],
    *,
    language: str | None,
    types: str = "paper",
    quantile: float = DEFAULT_QUANTILE,
    top_k: int = DEFAULT_TOP_K,
    random_state: int = 0,
    mask: str = "full",
    settings: dict[str, Any] | None = None,
    spill_dir: str | None = None,
) -> CATResult:
    """CAT-scores of a dataset: per-sample rows, per-layer summary and the type-rate table
    (one `CATAccumulator` over `samples`).

    samples: streamed once, in order; each a `CATSample` or a `SkippedSample`. All samples
        need the same number of layers (and heads, if per head).
    language: picks the `paper` list; types: `paper`, `topk` or `all`; top_k: k of `topk`.
    mask: the cells scored, "full" or "causal" (`codeprobe.probes.cat.score`).
    settings: recorded in the result (model, versions, ...), next to these arguments.
    spill_dir: where `topk` keeps its samples' inputs until every sample is seen (default:
        the system's temporary folder).
    Raises InputError if no sample has inputs.
    """
    from codeprobe.probes.cat.scorer import CATAccumulator  # it builds on this module

    with CATAccumulator(
        language=language,
        types=types,
        quantile=quantile,
        top_k=top_k,
        random_state=random_state,
        mask=mask,
        spill_dir=spill_dir,
    ) as scorer:
        return scorer.extend(samples).result(settings)

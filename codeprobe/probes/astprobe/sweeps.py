"""Sweeps of fitted probes over (hidden state, rank) points, and the random-weights baseline.

A sweep fits one probe per (hidden state, rank) point on cached hidden states (the model never
re-runs) and
scores it on the validation split (for selection: `select_on_validation`) and the test split
(for reporting); each point carries its fitted `ASTProbe` (`ASTProbe.from_fit_result`). All
points of a sweep train together (`fit_many`): one pass over the batches per epoch, the hidden
states' probes stacked, each with its own schedule, early stopping and checkpoint; every point gets the
probe it would get trained alone. Baselines, as in
the paper (arXiv 2206.11719):
- embedding: the real model's hidden state 0 (the embeddings alone);
- random: the same architecture with random weights (seeded), the pretrained embeddings
  copied in as the paper did, probed at the same hidden states (a sweep over its hidden states).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from codeprobe.errors import InputError
from codeprobe.model import LoadedModel
from codeprobe.probes.astprobe.data import ProbeSplit, ensure_nonempty, split_vocabs
from codeprobe.probes.astprobe.estimator import ASTProbe
from codeprobe.probes.astprobe.evaluation import ProbeScores
from codeprobe.probes.astprobe.fitting import fit_many
from codeprobe.probes.astprobe.probe_run import ProbeDivergedError
from codeprobe.probes.astprobe.train_config import TrainConfig

log = logging.getLogger("codeprobe.astprobe")


_SCORE_KEYS = ("precision", "recall", "f1", "acc_c", "acc_u", "d_pairs", "loss")


def probe_folder_name(hidden_state: int, rank: int) -> str:
    """The folder a sweep saves its probe at (`hidden_state`, `rank`) in:
    `hidden_state_HH_rank_RRR` (for the first seed)."""
    return f"hidden_state_{hidden_state:02d}_rank_{rank:03d}"


@dataclass(frozen=True)
class SweepPoint:
    """One probe of a sweep, scored on validation (for selection) and on test (for reporting).

    Attributes:
        hidden_state, rank: where it probed (hidden_state: index into the model's hidden
            states, 0 = embeddings).
        seed: the probe's seed (initialisation and batch order).
        scores: test scores, or None if training diverged (see `error`).
        valid_scores: validation scores (None if it diverged).
        test_f1: float64 (n_test,), per-snippet test F1 in the test split's order (for
            bootstrap intervals and paired differences on the same snippets).
        best_epoch: epoch of the kept checkpoint (0 if it diverged).
        rollbacks: epochs the divergence guard undid.
        seconds: this point's share of the sweep's joint training (its wall time divided by
            the number of points) plus its own evaluation, in seconds.
        config: the training settings.
        epochs: epochs run.
        hit_max_epochs: the epoch budget ended the training, not early stopping (see
            `FitResult.hit_max_epochs`): the probe may not have converged.
        error: why there are no scores.
        probe: the fitted `ASTProbe` (None if it diverged).

    `never_improved` (best epoch 1 of several) marks a failed fit: no epoch after the first
    lowered the validation loss, so the kept probe has seen one epoch (see `TrainConfig.init`).
    """

    hidden_state: int
    rank: int
    scores: ProbeScores | None
    best_epoch: int
    rollbacks: tuple[int, ...]
    seconds: float
    config: TrainConfig
    epochs: int = 0
    hit_max_epochs: bool = False
    error: str | None = None

    @property
    def never_improved(self) -> bool:
        return self.best_epoch == 1 and self.epochs > 1

    seed: int = 0
    valid_scores: ProbeScores | None = None
    test_f1: np.ndarray = field(default_factory=lambda: np.zeros(0))
    probe: ASTProbe | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        """JSON-ready: hidden_state, rank, seed; test scores under their plain names (precision,
        recall, f1, acc_c, acc_u, d_pairs, loss), validation scores as valid_f1, ...; the
        per-snippet test F1 (`test_f1_per_snippet`); the training facts (best_epoch, epochs,
        hit_max_epochs, rollbacks, diverged, seconds) and the training settings that shaped the
        point (lr, batch_size, orthogonality, max_epochs, patience, min_improvement, lr_factor)."""
        out: dict = {"hidden_state": self.hidden_state, "rank": self.rank, "seed": self.seed}
        for prefix, scores in (("", self.scores), ("valid_", self.valid_scores)):
            for k in _SCORE_KEYS:
                out[prefix + k] = None if scores is None else round(getattr(scores, k), 6)
        out["test_f1_per_snippet"] = [round(float(x), 6) for x in self.test_f1]
        out.update(
            {
                "best_epoch": self.best_epoch,
                "epochs": self.epochs,
                "hit_max_epochs": self.hit_max_epochs,
                "never_improved": self.never_improved,
                "rollbacks": list(self.rollbacks),
                "diverged": self.error is not None,
                "seconds": round(self.seconds, 2),
            }
        )
        out.update(self.config.settings())
        if self.error:
            out["error"] = self.error
        return out


def sweep(
    train: ProbeSplit,
    valid: ProbeSplit,
    test: ProbeSplit,
    points: Iterable[tuple[int, int]],
    *,
    config: TrainConfig = TrainConfig(),
    random_state: int = 0,
    seeds: Sequence[int] | None = None,
    save_dir: str | Path | None = None,
    model: str | LoadedModel | None = None,
) -> list[SweepPoint]:
    """Fit (all together, see the module doc) and score on validation and test a probe at every
    (hidden state, rank) of `points`, for every seed.

    Args:
        train, valid, test: prepared splits of one language (their caches hold every hidden
            state).
        points: (hidden state, rank) pairs; a hidden state is an index into the model's hidden
            states (0 = embeddings).
        seeds: probe seeds (default: `random_state` alone); several give mean and spread.
        save_dir: if given, each probe is saved in `save_dir/hidden_state_HH_rank_RRR` (for the
            first seed; `..._seed_S` for the others).
        model: the model the caches' hidden states came from, the probes' `model_` (recorded in
            saved probes).

    Returns:
        One point per (hidden state, rank, seed), seeds innermost, with its fitted probe; a probe that
        diverged has no scores and says why.

    Raises:
        InputError: an empty split, or a hidden state the caches do not hold.
    """
    points = list(points)
    if not points:
        return []
    seeds = [random_state] if seeds is None else list(seeds)
    ensure_nonempty([train, valid, test], ["training", "validation", "test"])
    n_states = train.cache.n_states
    bad = sorted({h for h, _ in points if not 0 <= h < n_states})
    if bad:
        raise InputError(f"hidden states {bad} do not exist: the model has hidden states 0..{n_states - 1}")
    vocabs = split_vocabs(train)
    # One ProbeData per hidden state, shared by its ranks, so that a batch reads its rows once.
    hidden_states = sorted({h for h, _ in points})
    train_data = {h: train.data(h) for h in hidden_states}
    valid_data = {h: valid.data(h) for h in hidden_states}
    by_seed = {}
    for seed in seeds:
        start = time.perf_counter()
        results = fit_many(
            [train_data[h] for h, _ in points],
            [valid_data[h] for h, _ in points],
            {train.language: vocabs},
            [rank for _, rank in points],
            config=config,
            random_state=seed,
            return_errors=True,
        )
        by_seed[seed] = (results, (time.perf_counter() - start) / len(points))
    out = []
    for k, (hidden_state, rank) in enumerate(points):
        for j, seed in enumerate(seeds):
            result, share = by_seed[seed][0][k], by_seed[seed][1]
            out.append(
                _scored(
                    result,
                    hidden_state,
                    rank,
                    seed,
                    share,
                    train,
                    valid,
                    test,
                    config,
                    save_dir,
                    model,
                    suffix=f"_seed_{seed}" if j else "",
                )
            )
    return out


def _scored(
    result, hidden_state, rank, seed, share, train, valid, test, config, save_dir, model, suffix: str
) -> SweepPoint:
    start = time.perf_counter()
    if isinstance(result, ProbeDivergedError):
        log.warning("hidden state %d, rank %d, seed %d: %s", hidden_state, rank, seed, result)
        return SweepPoint(hidden_state, rank, None, 0, (), share, config, error=str(result), seed=seed)
    probe = ASTProbe.from_fit_result(
        result, train, model=model, rank=rank, hidden_state=hidden_state, random_state=seed, config=config
    )
    valid_scores = probe.evaluate_split(valid)
    scores = probe.evaluate_split(test)
    if save_dir is not None:
        probe.save(Path(save_dir) / f"{probe_folder_name(hidden_state, rank)}{suffix}")
    log.info(
        "hidden state %d, rank %d, seed %d: valid F1 %.4f, test F1 %.4f (epoch %d of %d%s)",
        hidden_state,
        rank,
        seed,
        valid_scores.f1,
        scores.f1,
        result.best_epoch,
        result.epochs,
        ", budget reached" if result.hit_max_epochs else "",
    )
    return SweepPoint(
        hidden_state,
        rank,
        scores,
        result.best_epoch,
        result.rollbacks,
        share + time.perf_counter() - start,
        config,
        result.epochs,
        result.hit_max_epochs,
        seed=seed,
        valid_scores=valid_scores,
        test_f1=scores.per_snippet.f1,
        probe=probe,
    )


def select_on_validation(points: Sequence[dict], by: str, among: Iterable[int] | None = None) -> int | None:
    """The `by` value ("hidden_state" or "rank"; restricted to `among` if given) whose probes have the
    best mean validation F1 over seeds (ties: the smaller value); None if every probe diverged.
    `points` are `SweepPoint.as_dict()`s."""
    allowed = None if among is None else set(among)
    means: dict[int, list[float]] = {}
    for p in points:
        if p.get("valid_f1") is not None and (allowed is None or p[by] in allowed):
            means.setdefault(p[by], []).append(p["valid_f1"])
    if not means:
        return None
    return max(sorted(means), key=lambda v: sum(means[v]) / len(means[v]))

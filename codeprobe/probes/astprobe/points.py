"""Probe points: one AST-Probe per (layer, rank, seed), scored on validation and on test.

Model selection uses validation scores only (`select`); test scores are for reporting. Each
point keeps its test split's per-snippet F1, so the report can give bootstrap intervals and
paired differences on exactly the same snippets (`codeprobe.uncertainty`).

AST-Probe: Hernández López et al., "AST-Probe: Recovering abstract syntax trees from hidden
representations of pre-trained language models", ASE 2022 (arXiv:2206.11719).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codeprobe.model import LoadedModel
from codeprobe.probes.astprobe.data import ProbeSplit
from codeprobe.probes.astprobe.estimator import ASTProbe
from codeprobe.probes.astprobe.training import ProbeDivergedError, ProbeScores, TrainConfig

log = logging.getLogger("codeprobe.astprobe")

_SCORE_KEYS = ("precision", "recall", "f1", "acc_c", "acc_u", "d_pairs", "loss")


@dataclass(frozen=True)
class ProbePoint:
    """One trained probe and its scores.

    Attributes:
        layer: hidden-states index (0 = embeddings); rank: the probe's rank; seed: its seed.
        valid, test: scores on the validation and test splits (None if training diverged).
        test_f1: float64 (n_test,), per-snippet F1 on test, in the test split's order.
        best_epoch: 1-based epoch of the kept checkpoint; epochs: epochs run; max_epochs: the
            budget; hit_max_epochs: the best checkpoint is the last epoch allowed, i.e. the
            validation loss was still falling when the budget ran out (under-trained).
        rollbacks: epochs the divergence guard undid; seconds: fit + evaluation time.
        error: why there are no scores.
    """

    layer: int
    rank: int
    seed: int
    valid: ProbeScores | None
    test: ProbeScores | None
    test_f1: np.ndarray
    best_epoch: int
    epochs: int
    max_epochs: int
    rollbacks: tuple[int, ...]
    seconds: float
    error: str | None = None

    @property
    def hit_max_epochs(self) -> bool:
        return self.valid is not None and self.best_epoch >= self.max_epochs

    def as_dict(self) -> dict:
        """JSON-ready: test scores under their plain names (f1, precision, ...), validation
        scores as valid_f1, valid_precision, ..., the per-snippet test F1 and training facts."""
        out: dict = {"layer": self.layer, "rank": self.rank, "seed": self.seed}
        for prefix, scores in (("", self.test), ("valid_", self.valid)):
            for k in _SCORE_KEYS:
                out[prefix + k] = None if scores is None else round(getattr(scores, k), 6)
        out["test_f1_per_snippet"] = [round(float(x), 6) for x in self.test_f1]
        out.update({"best_epoch": self.best_epoch, "epochs": self.epochs, "max_epochs": self.max_epochs,
                    "hit_max_epochs": self.hit_max_epochs, "rollbacks": list(self.rollbacks),
                    "diverged": self.error is not None, "seconds": round(self.seconds, 2)})
        if self.error:
            out["error"] = self.error
        return out


def evaluated_sweep(
    train: ProbeSplit,
    valid: ProbeSplit,
    test: ProbeSplit,
    points: Iterable[tuple[int, int]],
    *,
    config: TrainConfig = TrainConfig(),
    seeds: Sequence[int] = (0,),
    save_dir: str | Path | None = None,
    model: str | LoadedModel | None = None,
) -> list[ProbePoint]:
    """Fit a probe at every (layer, rank) of `points` with every seed; score each on valid and
    test.

    Args:
        train, valid, test: prepared splits of one language (their caches hold every layer).
        seeds: probe seeds (initialisation and batch order); several give mean and spread.
        save_dir: if given, each probe is saved in `save_dir/layer_LL_rank_RRR[_seed_S]` (the
            first seed without the suffix).
        model: recorded in saved probes (the name the caches' vectors came from).
    """
    out = []
    for layer, rank in points:
        for k, seed in enumerate(seeds):
            out.append(_point(train, valid, test, layer, rank, seed, config, model,
                              _save_path(save_dir, layer, rank, seed if k else None)))
    return out


def _point(train, valid, test, layer, rank, seed, config, model, save_path) -> ProbePoint:
    start = time.perf_counter()
    probe = ASTProbe(rank=rank, layer=layer, language=train.language, model=model, random_state=seed,
                     config=config)
    try:
        probe.fit_splits(train, valid)
    except ProbeDivergedError as err:
        log.warning("layer %d, rank %d, seed %d: %s", layer, rank, seed, err)
        return ProbePoint(layer, rank, seed, None, None, np.zeros(0), 0, config.max_epochs, config.max_epochs,
                          (), time.perf_counter() - start, str(err))
    valid_scores = probe.evaluate_split(valid)
    test_scores = probe.evaluate_split(test)
    result = probe.fit_result_
    if save_path is not None:
        probe.save(save_path)
    log.info("layer %d, rank %d, seed %d: valid F1 %.4f, test F1 %.4f (best epoch %d of %d)", layer, rank,
             seed, valid_scores.f1, test_scores.f1, result.best_epoch, len(result.history))
    return ProbePoint(layer, rank, seed, valid_scores, test_scores, test_scores.per_snippet.f1,
                      result.best_epoch, len(result.history), config.max_epochs, result.rollbacks,
                      time.perf_counter() - start)


def _save_path(save_dir, layer: int, rank: int, seed: int | None) -> Path | None:
    if save_dir is None:
        return None
    return Path(save_dir) / (f"layer_{layer:02d}_rank_{rank:03d}" + (f"_seed_{seed}" if seed is not None else ""))


def select_on_validation(points: list[dict], by: str, among: Iterable[int] | None = None) -> int | None:
    """The `by` value ("layer" or "rank"; restricted to `among` if given) whose probes have the
    best mean validation F1 over seeds (ties: the smaller value); None if every probe diverged.
    `points` are `ProbePoint.as_dict()`s."""
    allowed = None if among is None else set(among)
    means: dict[int, list[float]] = {}
    for p in points:
        if p.get("valid_f1") is not None and (allowed is None or p[by] in allowed):
            means.setdefault(p[by], []).append(p["valid_f1"])
    if not means:
        return None
    return max(sorted(means), key=lambda v: sum(means[v]) / len(means[v]))

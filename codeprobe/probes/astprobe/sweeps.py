"""Layer and rank sweeps, the two baselines, and their tables and plots.

A sweep fits one probe per (layer, rank) point on cached vectors (the model never re-runs) and
scores it on the test split. Baselines, as in the paper:
- embedding: the real model's layer 0 (the embeddings alone);
- random: the same architecture with random weights (seeded), the pretrained embeddings
  copied in as the paper did, probed at the same layers.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from codeprobe.model import LoadedModel
from codeprobe.probes.astprobe.data import ProbeSplit
from codeprobe.probes.astprobe.estimator import ASTProbe
from codeprobe.probes.astprobe.training import ProbeDivergedError, ProbeScores, TrainConfig

log = logging.getLogger("codeprobe.astprobe")

RANDOM_LABEL = "random weights (seed {seed}), pretrained embeddings"


@dataclass(frozen=True)
class SweepPoint:
    """One probe of a sweep and its test scores.

    Attributes:
        layer, rank: where it probed.
        scores: test scores, or None if training diverged (see `error`).
        best_epoch: epoch of the kept checkpoint; rollbacks: epochs the divergence guard undid.
        seconds: wall time of the fit and the evaluation.
        error: why there are no scores.
    """

    layer: int
    rank: int
    scores: ProbeScores | None
    best_epoch: int
    rollbacks: tuple[int, ...]
    seconds: float
    error: str | None = None

    def as_dict(self) -> dict:
        """JSON-ready: layer, rank, precision, recall, f1, accuracies, training facts."""
        out = {"layer": self.layer, "rank": self.rank}
        if self.scores is not None:
            out.update({k: round(v, 6) for k, v in self.scores.as_dict().items()})
        else:
            out.update({"precision": None, "recall": None, "f1": None})
        out.update({"best_epoch": self.best_epoch, "rollbacks": list(self.rollbacks),
                    "diverged": self.error is not None, "seconds": round(self.seconds, 2)})
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
    save_dir: str | Path | None = None,
    model: str | LoadedModel | None = None,
) -> list[SweepPoint]:
    """Fit and score a probe at every (layer, rank) of `points`.

    Args:
        train, valid, test: prepared splits of one language (their caches hold every layer).
        save_dir: if given, each probe is saved in `save_dir/layer_LL_rank_RRR`.
        model: recorded in saved probes (the name the caches' vectors came from).
    """
    out = []
    for layer, rank in points:
        start = time.perf_counter()
        probe = ASTProbe(rank=rank, layer=layer, language=train.language, model=model,
                         random_state=random_state, config=config)
        try:
            probe.fit_splits(train, valid)
            scores = probe.evaluate_split(test)
        except ProbeDivergedError as err:
            log.warning("layer %d, rank %d: %s", layer, rank, err)
            out.append(SweepPoint(layer, rank, None, 0, (), time.perf_counter() - start, str(err)))
            continue
        result = probe.fit_result_
        if save_dir is not None:
            probe.save(Path(save_dir) / f"layer_{layer:02d}_rank_{rank:03d}")
        point = SweepPoint(layer, rank, scores, result.best_epoch, result.rollbacks,
                           time.perf_counter() - start)
        log.info("layer %d, rank %d: F1 %.4f (epoch %d)", layer, rank, scores.f1, result.best_epoch)
        out.append(point)
    return out


def layer_sweep(train, valid, test, layers: Sequence[int], rank: int = 128, **kwargs) -> list[SweepPoint]:
    """Every layer of `layers` at one rank (the paper's rank 128)."""
    return sweep(train, valid, test, [(layer, rank) for layer in layers], **kwargs)


def rank_sweep(train, valid, test, layer: int, ranks: Sequence[int] = (8, 16, 32, 64, 128, 256, 512),
               **kwargs) -> list[SweepPoint]:
    """Every rank of `ranks` at one layer; ranks above the hidden size are skipped."""
    hidden = train.cache.hidden
    return sweep(train, valid, test, [(layer, r) for r in ranks if r <= hidden], **kwargs)


def random_weights(loaded: LoadedModel, seed: int = 0) -> LoadedModel:
    """The same architecture with freshly initialised weights (seeded, without touching the
    global RNG), its embeddings copied from `loaded` as in the paper's random baseline."""
    source = loaded.model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = type(source)(copy.deepcopy(source.config))
    embeddings = getattr(source, "embeddings", None)
    if embeddings is not None:
        model.embeddings.load_state_dict(embeddings.state_dict())
    else:
        model.get_input_embeddings().load_state_dict(source.get_input_embeddings().state_dict())
    param = next(source.parameters())
    model.to(device=param.device, dtype=param.dtype).eval()
    info = dataclasses.replace(
        loaded.info,
        name=f"{loaded.info.name} [{RANDOM_LABEL.format(seed=seed)}]",
        weights_sha256=None,
        note=RANDOM_LABEL.format(seed=seed),
    )
    return dataclasses.replace(loaded, model=model, info=info)


def table(points: Sequence[SweepPoint], by: str = "layer") -> str:
    """A markdown table of a sweep (one row per point)."""
    head = ["layer", "rank", "precision", "recall", "F1", "acc c", "acc u", "d pairs", "epoch", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in sorted(points, key=lambda p: (getattr(p, by), p.layer, p.rank)):
        if p.scores is None:
            cells = ["-"] * 6 + [str(p.best_epoch), "diverged"]
        else:
            s = p.scores
            cells = [f"{s.precision:.4f}", f"{s.recall:.4f}", f"{s.f1:.4f}", f"{s.acc_c:.4f}",
                     f"{s.acc_u:.4f}", f"{s.d_pairs:.4f}", str(p.best_epoch),
                     f"rolled back {list(p.rollbacks)}" if p.rollbacks else ""]
        lines.append("| " + " | ".join([str(p.layer), str(p.rank), *cells]) + " |")
    return "\n".join(lines)


def plot(
    series: dict[str, Sequence[SweepPoint]],
    by: str,
    path: str | Path,
    *,
    reference: dict[str, float] | None = None,
    title: str = "",
) -> Path:
    """Save a plot of F1 against `by` ("layer" or "rank"), one line per series, and horizontal
    lines for `reference` values (e.g. the embedding baseline)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in series.items():
        pts = sorted((getattr(p, by), p.scores.f1) for p in points if p.scores is not None)
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=name)
    for name, value in (reference or {}).items():
        ax.axhline(value, linestyle="--", linewidth=1, color="grey")
        ax.annotate(name, (ax.get_xlim()[0], value), fontsize=8, va="bottom")
    if by == "rank":
        ax.set_xscale("log", base=2)
    ax.set_xlabel(by)
    ax.set_ylabel("F1 (mean over snippets)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

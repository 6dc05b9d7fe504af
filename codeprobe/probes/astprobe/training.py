"""Fit and evaluate probes on precomputed token vectors (AST-Probe, arXiv 2206.11719).

The spec's recipe: Adam (lr 1e-3), batches of 32 snippets, loss L_d + L_c + L_u + 5 ||B^T B - I||^2,
ReduceLROnPlateau(factor 0.1, patience 0) on the validation loss without the penalty, early stop
after 5 epochs without improvement, keep the best-validation checkpoint. The paper stopped at 20
epochs at most, long before the probes converge; by default here a probe trains until validation
stops improving, by at least 0.01% (see `TrainConfig`), under a budget it rarely reaches, and
`TrainConfig.paper()` restores the paper's settings.

Several probes train together (`fit_many`): probes of the same snippets, each reading its own
token vectors (one per layer, say), go through one pass over the batches. A batch gathers the
same rows from every probe's vectors, (S, n, hidden), and probes of one shape (hidden, rank) are
scored with batched matrix products; each probe keeps its own parameters, Adam state,
learning-rate schedule, early stopping, best checkpoint and divergence guard, so its result is
the one it gets trained alone (`fit`, which is `fit_many` of one probe) with the same seed, up to
float rounding. A probe that has stopped leaves the stack.

Batches are gathered from one flat (tokens, hidden) tensor by index, with no per-snippet
Python. The validation loss is the mean over the whole split (sums over all batches divided by
all counts), not the mean of batch means.

Divergence guard: an epoch whose training or validation loss is not finite, or exceeds 100 times
its value at initialisation, is rolled back to the best checkpoint (or the initial state) and
the learning rate divided by 10; such epochs are listed in `FitResult.rollbacks`, and a fit that
never got a finite validation loss raises `ProbeDivergedError` instead of returning an untrained
probe.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from codeprobe.errors import CodeprobeError, InputError
from codeprobe.probes.astprobe.probe import (
    IGNORE,
    INITS,
    ORTHOGONALITY_WEIGHT,
    BatchLayout,
    FlatTargets,
    LossParts,
    ProbeModule,
    layout,
    loss_parts,
    orthogonality,
    stacked_loss,
)
from codeprobe.probes.astprobe.recovery import SnippetScores, TupleBatch, score
from codeprobe.probes.astprobe.vocab import UNKNOWN_ID, LabelVocab
from codeprobe.progress import progress

log = logging.getLogger("codeprobe.astprobe")

_BLOW_UP = 100.0
_EVAL_BATCH = 256  # snippets per evaluation batch
_EVAL_FLOATS = 1 << 26  # at most this many gathered float32s (256 MiB) per evaluation forward

PAPER_MAX_EPOCHS = 20
DEFAULT_MAX_EPOCHS = 200
DEFAULT_MIN_IMPROVEMENT = 1e-4


class ProbeDivergedError(CodeprobeError, RuntimeError):
    """Training never reached a finite validation loss (the probe would be meaningless)."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings: the spec's recipe, trained to convergence (`paper()`: the
    paper's settings, arXiv 2206.11719).

    Defaults, and why. Measured with the packaged MiniLM on 1,065 standard-library functions
    (138 for validation), rank 128, every hidden state: validation loss was still falling at
    epoch 20 (8-36% above its final value) and reached its minimum, to 0.1%, between epochs 32
    and 68. With the paper's strict "lower" rule four of the seven probes ran to a 300-epoch
    cap: once the schedule has cut the learning rate to its floor (1e-8), the validation loss
    still creeps down by about 4e-7 of itself per epoch, which resets patience for ever. The
    rule below, replayed on the same histories, stops all seven after 38 to 76 epochs, at
    validation losses within 0.01% of their 300-epoch values.

    Attributes:
        lr: Adam's initial learning rate.
        batch_size: snippets per batch.
        max_epochs: most epochs (default `DEFAULT_MAX_EPOCHS`, 200: about three times the
            longest measured run, so rarely reached; `FitResult.hit_max_epochs` says when it was).
        patience: stop after this many epochs without improvement.
        min_improvement: an epoch improves when its validation loss is below (1 -
            min_improvement) times the loss of the last epoch that improved. Default 1e-4, the
            relative threshold ReduceLROnPlateau itself uses to decide that an epoch did not
            improve; 0 is the paper's strict "lower". The kept checkpoint is the lowest
            validation loss either way.
        orthogonality: weight of ||B^T B - I||_F^2 in the training loss.
        lr_factor: ReduceLROnPlateau's factor (its patience is 0: every epoch without a lower
            validation loss multiplies the learning rate by it); also the divergence guard's.
        device: where the probes train.
        threads: torch CPU threads while fitting (None: leave torch's setting).
        init: the projection's initialisation: "uniform" (the spec's uniform(-0.05, 0.05)) or
            "orthogonal" (orthonormal columns: the penalty starts at zero). Why a switch: with
            the uniform init the weighted penalty 5 ||B^T B - I||^2 starts near
            5 rank (1 - hidden / 1200)^2 (columns of squared norm hidden / 1200, not 1): about
            400 for rank 128 of a 256-wide model, against a probe loss near 20. Pulling B towards
            orthonormal columns then raises the validation loss for the first epochs; the
            schedule (patience 0) cuts the learning rate to 1e-7 and early stopping keeps the
            first epoch: a probe that never trained (`never_improved` in the results). Measured
            on a 256-wide model (docs/checkpoint-series.md); on 384- and 768-wide models with
            rank 128 the uniform init trains.

    Raises:
        InputError: a non-positive lr, batch size, epoch budget or patience.
    """

    lr: float = 1e-3
    batch_size: int = 32
    max_epochs: int = DEFAULT_MAX_EPOCHS
    patience: int = 5
    min_improvement: float = DEFAULT_MIN_IMPROVEMENT
    orthogonality: float = ORTHOGONALITY_WEIGHT
    lr_factor: float = 0.1
    device: str = "cpu"
    threads: int | None = None
    init: str = "uniform"

    def __post_init__(self) -> None:
        if (self.batch_size < 1 or self.max_epochs < 1 or self.patience < 1 or not self.lr >= 0
                or not 0 <= self.min_improvement < 1 or self.init not in INITS):
            raise InputError(f"invalid training settings: {self}")

    @classmethod
    def paper(cls, **changes) -> TrainConfig:
        """The paper's settings (arXiv 2206.11719): at most 20 epochs, and an epoch improves
        when its validation loss is lower at all (`changes` override any field)."""
        return cls(**{"max_epochs": PAPER_MAX_EPOCHS, "min_improvement": 0.0, **changes})

    def settings(self) -> dict[str, float | int]:
        """The settings that shape a probe's result (not where or on how many threads it ran)."""
        return {"lr": self.lr, "batch_size": self.batch_size, "orthogonality": self.orthogonality,
                "max_epochs": self.max_epochs, "patience": self.patience,
                "min_improvement": self.min_improvement, "lr_factor": self.lr_factor, "init": self.init}


@dataclass(frozen=True, eq=False)
class ProbeData:
    """One split of one language at one layer: token vectors and gold tuples.

    Attributes:
        vectors: (N, hidden) token vectors of all snippets back to back (float16 or float32,
            numpy or torch; a memory map is fine: only gathered rows are read).
        gold: the gold (d, c, u) of the same snippets (label strings kept for scoring).
        language: canonical language name.
    """

    vectors: np.ndarray | torch.Tensor
    gold: TupleBatch
    language: str

    def __post_init__(self) -> None:
        n_tok = int(self.gold.lengths.sum())
        if self.vectors.shape[0] != n_tok:
            raise InputError(f"{self.vectors.shape[0]} token vectors for {n_tok} tokens")
        if (self.gold.lengths < 2).any():
            raise InputError("AST-Probe needs snippets of at least 2 tokens")

    def __len__(self) -> int:
        return len(self.gold)

    @property
    def hidden(self) -> int:
        return int(self.vectors.shape[1])


@dataclass(frozen=True)
class _Batch:
    """One batch's token rows and gold, shared by every probe of the same snippets."""

    tok: np.ndarray  # int64 (n,): rows of the split's token vectors
    targets: FlatTargets
    language: str


@dataclass(frozen=True, eq=False)
class _Targets:
    """A split's gold as label ids of one vocabulary pair, with index helpers and every
    snippet's gold-ordered pairs (a, b), d_a > d_b, listed once (int32 positions inside the
    snippet: memory grows with the sum of squared snippet lengths, as a batch's pair list does)."""

    gold: TupleBatch
    language: str
    c: np.ndarray
    u: np.ndarray
    token_start: np.ndarray
    split_start: np.ndarray

    @classmethod
    def of(cls, data: ProbeData, c_vocab: LabelVocab, u_vocab: LabelVocab) -> _Targets:
        gold = data.gold
        lengths = gold.lengths
        return cls(
            gold=gold,
            language=data.language,
            c=c_vocab.encode(gold.c_names)[gold.c] if gold.c.size else gold.c,
            u=u_vocab.encode(gold.u_names)[gold.u],
            token_start=np.cumsum(lengths) - lengths,
            split_start=np.cumsum(lengths - 1) - (lengths - 1),
        )

    @cached_property
    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(a, b, first row, count per snippet) of every snippet's gold-ordered pairs."""
        a, b, count = _ordered_pairs(self.gold, self.split_start)
        return a, b, np.cumsum(count) - count, count

    def __len__(self) -> int:
        return len(self.gold)

    def batch(self, ids: np.ndarray, device: str) -> _Batch:
        """Snippets `ids` as one flat batch, for `stacked_loss`."""
        lengths = self.gold.lengths[ids]
        tok = _ranges(self.token_start[ids], lengths)
        split = _ranges(self.split_start[ids], lengths - 1)
        offset = np.cumsum(lengths) - lengths  # each snippet's first token in the batch
        pair_a, pair_b, pair_start, pair_count = self.pairs
        rows = _ranges(pair_start[ids], pair_count[ids])
        pair_offset = np.repeat(offset, pair_count[ids])
        diff = _ranges(offset, lengths - 1)  # the in-snippet differences
        c = np.full(tok.size - 1, IGNORE, dtype=np.int64)
        c[diff] = np.where(self.c[split] == UNKNOWN_ID, IGNORE, self.c[split])
        u = np.where(self.u[tok] == UNKNOWN_ID, IGNORE, self.u[tok])
        as_t = lambda a: torch.as_tensor(a, dtype=torch.long, device=device)  # noqa: E731
        targets = FlatTargets(
            pair_a=as_t(pair_a[rows] + pair_offset),
            pair_b=as_t(pair_b[rows] + pair_offset),
            c=as_t(c),
            u=as_t(u),
            c_count=as_t(np.count_nonzero(c != IGNORE)),
            u_count=as_t(np.count_nonzero(u != IGNORE)),
        )
        return _Batch(tok, targets, self.language)

    def reference_batch(self, ids: np.ndarray, device: str):
        """Snippets `ids` as (token rows, layout, d, c, u) for `ProbeModule.forward` and
        `loss_parts` (the single-probe form that prediction uses)."""
        lengths = self.gold.lengths[ids]
        tok = _ranges(self.token_start[ids], lengths)
        split = _ranges(self.split_start[ids], lengths - 1)
        as_t = lambda a, dt=torch.long: torch.as_tensor(a, dtype=dt, device=device)  # noqa: E731
        return (tok, layout(lengths, device), as_t(self.gold.d[split], torch.float32),
                as_t(self.c[split]), as_t(self.u[tok]))


def _ordered_pairs(gold: TupleBatch, split_start: np.ndarray):
    """Every snippet's pairs of split points (a, b) with gold d_a > d_b, as int32 positions
    inside the snippet, snippet after snippet, and their count per snippet."""
    m = gold.lengths - 1
    out_a, out_b, counts = [], [], []
    start = 0
    while start < m.size:
        # Snippets [start, stop): about 4M candidate pairs at a time (at least one snippet).
        stop = start + max(1, int(np.searchsorted(np.cumsum(m[start:] ** 2), 1 << 22, side="right")))
        lay = layout(gold.lengths[start:stop])
        pa, pb = lay.pair_a.numpy(), lay.pair_b.numpy()
        d = gold.d[split_start[start] : split_start[start] + int(m[start:stop].sum())]
        keep = d[pa] > d[pb]
        owner = np.repeat(np.arange(stop - start), m[start:stop] ** 2)[keep]
        first = (np.cumsum(m[start:stop]) - m[start:stop])[owner]
        out_a.append((pa[keep] - first).astype(np.int32))
        out_b.append((pb[keep] - first).astype(np.int32))
        counts.append(np.bincount(owner, minlength=stop - start))
        start = stop
    if not out_a:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int64)
    return np.concatenate(out_a), np.concatenate(out_b), np.concatenate(counts).astype(np.int64)


def _gather(vectors: np.ndarray | torch.Tensor, tok: np.ndarray, out: torch.Tensor) -> torch.Tensor:
    """Copy rows `tok` of `vectors` into `out` (float32 (n, hidden)), converting as it goes."""
    if isinstance(vectors, torch.Tensor):
        return out.copy_(vectors[torch.as_tensor(tok)])
    return out.copy_(torch.from_numpy(np.asarray(vectors[tok])))


def _stack(vectors: Sequence[np.ndarray | torch.Tensor], tok: np.ndarray, device: str,
           gathered: dict[int, torch.Tensor]) -> torch.Tensor:
    """float32 (S, n, hidden): rows `tok` of each of `vectors`. `gathered` remembers the rows
    already read from an array in this batch (by identity), so that probes sharing vectors
    (a rank sweep) read them once."""
    out = torch.empty((len(vectors), tok.size, vectors[0].shape[1]), dtype=torch.float32, device=device)
    for k, v in enumerate(vectors):
        if id(v) in gathered:
            out[k].copy_(gathered[id(v)])
        else:
            gathered[id(v)] = _gather(v, tok, out[k])
    return out


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    valid_loss: float
    lr: float


@dataclass(frozen=True)
class FitResult:
    """A trained probe and how the training went.

    Attributes:
        module: the probe at its best validation epoch.
        best_epoch: 1-based epoch of that checkpoint.
        best_valid_loss: its validation loss (without the orthogonality penalty).
        history: one record per epoch run.
        rollbacks: epochs rolled back by the divergence guard.
        hit_max_epochs: the epoch budget, not early stopping, ended the training: all
            `max_epochs` epochs ran and fewer than `patience` of them came after the last
            improvement (see `TrainConfig.min_improvement`; a rolled-back epoch counts as none). The probe may not have
            converged: more epochs might have lowered its validation loss. False when early
            stopping ended it, even on the last allowed epoch.
    """

    module: ProbeModule
    best_epoch: int
    best_valid_loss: float
    history: tuple[EpochRecord, ...]
    rollbacks: tuple[int, ...] = field(default=())
    hit_max_epochs: bool = False

    @property
    def epochs(self) -> int:
        """Epochs run."""
        return len(self.history)


@dataclass(frozen=True)
class ProbeScores:
    """Evaluation of a probe on one split.

    Attributes:
        precision, recall, f1: macro averages over snippets of the recovered trees' scores.
        acc_c, acc_u: accuracy of the argmax c and u labels (a gold label unseen in training is
            always wrong).
        d_pairs: fraction of the pairs with gold d_i > d_j predicted with dhat_i > dhat_j.
        loss: L_d + L_c + L_u (no penalty).
        per_snippet: P, R, F1 of every snippet.
    """

    precision: float
    recall: float
    f1: float
    acc_c: float
    acc_u: float
    d_pairs: float
    loss: float
    per_snippet: SnippetScores

    def as_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("precision", "recall", "f1", "acc_c", "acc_u", "d_pairs", "loss")}


@dataclass(frozen=True)
class Prediction:
    """Predicted tuples of a split: `tuples.d` are the squared distances dhat."""

    tuples: TupleBatch
    loss: float
    acc_c: float
    acc_u: float
    d_pairs: float


def fit(
    train: ProbeData | Sequence[ProbeData],
    valid: ProbeData | Sequence[ProbeData],
    vocabs: dict[str, tuple[LabelVocab, LabelVocab]],
    rank: int,
    *,
    config: TrainConfig = TrainConfig(),
    random_state: int = 0,
) -> FitResult:
    """Train a probe: one shared projection, label vectors per language in `vocabs`.

    Args:
        train, valid: one split per language (one of each for a monolingual probe).
        vocabs: language -> (c vocabulary, u vocabulary), built from the training split.
        rank: the projection's dimension r.
        random_state: seeds the initialisation and the batch order (deterministic on CPU).

    Raises:
        ProbeDivergedError: no epoch reached a finite validation loss.
        InputError: splits of different widths, or a rank below 1.
    """
    return fit_many([train], [valid], vocabs, rank, config=config, random_state=random_state)[0]


def fit_many(
    train: Sequence[ProbeData | Sequence[ProbeData]],
    valid: Sequence[ProbeData | Sequence[ProbeData]],
    vocabs: dict[str, tuple[LabelVocab, LabelVocab]],
    ranks: int | Sequence[int],
    *,
    config: TrainConfig = TrainConfig(),
    random_state: int = 0,
    return_errors: bool = False,
) -> list[FitResult | ProbeDivergedError]:
    """Train several probes of the same snippets together, one pass over the batches per epoch.

    Each probe ("member") has its own token vectors (e.g. one layer each, or the same layer at
    several ranks) of the same snippets with the same gold tuples. Every member gets exactly
    what `fit` would give it alone with the same `random_state` (same initialisation, batch
    order, learning-rate schedule, early stopping, checkpoint and divergence guard), up to float
    rounding of the batched products. Members of one (hidden, rank) shape are stacked and scored
    with batched matrix products; the shapes share the batch loop, and members that read the
    same vectors array gather its rows once per batch (pass the same object). A member that has
    stopped costs nothing further.

    Args:
        train, valid: per member, its split (or one split per language, in the same language
            order for every member). All members' splits hold the same snippets in the same
            order (equal gold tuples).
        vocabs: language -> (c vocabulary, u vocabulary), built from the training split.
        ranks: one rank for all members, or one per member.
        random_state: seeds every member's initialisation and the shared batch order.
        return_errors: put a member's `ProbeDivergedError` in its place in the result instead
            of raising it (after all members finished).

    Returns:
        One `FitResult` per member, in order (or the member's error, see `return_errors`).

    Raises:
        ProbeDivergedError: a member never reached a finite validation loss (unless
            `return_errors`).
        InputError: mismatched members (number, snippets, gold, languages or widths), or a rank
            below 1.
    """
    if config.threads is None:
        return _fit_many(train, valid, vocabs, ranks, config, random_state, return_errors)
    before = torch.get_num_threads()
    # The probe's matrices are small: on a busy machine one thread beats OpenMP's spinning ones.
    torch.set_num_threads(config.threads)
    try:
        return _fit_many(train, valid, vocabs, ranks, config, random_state, return_errors)
    finally:
        torch.set_num_threads(before)


class _Run:
    """One member's probe and training state (what `fit` keeps for a single probe)."""

    def __init__(self, module: ProbeModule, train: list[ProbeData], valid: list[ProbeData],
                 config: TrainConfig, optimizer: torch.optim.Optimizer | None = None, name: str = "probe") -> None:
        self.module, self.train, self.valid, self.config, self.name = module, train, valid, config, name
        self.optimizer = optimizer or _adam(module, config.lr)
        self.scheduler = self._scheduler()
        self.best_state = copy.deepcopy(module.state_dict())
        self.best_loss, self.best_epoch, self.stale = math.inf, 0, 0
        self.mark = math.inf  # validation loss of the last epoch that improved
        self.history: list[EpochRecord] = []
        self.rollbacks: list[int] = []
        self.init_train = self.init_valid = math.nan
        self.done = False

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.module.proj.shape)

    def _scheduler(self):
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=self.config.lr_factor, patience=0
        )

    def begin(self, init_valid: float) -> None:
        """Record the losses at initialisation (the divergence guard's yardstick)."""
        self.init_valid = init_valid
        with torch.no_grad():
            self.init_train = init_valid + self.config.orthogonality * float(self.module.orthogonality())

    def end_epoch(self, epoch: int, train_loss: float, valid_loss: float) -> None:
        """Guard, schedule, checkpoint and early-stopping bookkeeping after one epoch."""
        config = self.config
        lr = self.optimizer.param_groups[0]["lr"]
        self.history.append(EpochRecord(epoch, train_loss, valid_loss, lr))
        log.info("%s, epoch %d: train loss %.4f, validation loss %.4f, lr %.1e", self.name, epoch, train_loss,
                 valid_loss, lr)
        blew_up = not (
            train_loss <= _BLOW_UP * max(self.init_train, 1.0)
            and valid_loss <= _BLOW_UP * max(self.init_valid, 1.0)
        )  # also true for NaN
        if blew_up:
            log.warning("%s, epoch %d diverged (train loss %s): rolled back, lr divided by 10", self.name, epoch,
                        train_loss)
            self.rollbacks.append(epoch)
            self.module.load_state_dict(self.best_state)
            self.optimizer = _adam(self.module, lr * config.lr_factor)
            self.scheduler = self._scheduler()
            self.stale += 1
        else:
            self.scheduler.step(valid_loss)
            if valid_loss < self.best_loss:
                self.best_loss, self.best_epoch = valid_loss, epoch
                self.best_state = copy.deepcopy(self.module.state_dict())
            if valid_loss < self.mark * (1.0 - config.min_improvement):
                self.mark, self.stale = valid_loss, 0
            else:
                self.stale += 1
        self.done = self.stale >= config.patience or epoch >= config.max_epochs

    def result(self) -> FitResult | ProbeDivergedError:
        if self.best_epoch == 0:
            return ProbeDivergedError(
                f"the probe diverged: no finite validation loss in {len(self.history)} epochs"
            )
        self.module.load_state_dict(self.best_state)
        self.module.eval()
        hit_max = len(self.history) == self.config.max_epochs and self.stale < self.config.patience
        return FitResult(self.module, self.best_epoch, self.best_loss, tuple(self.history),
                         tuple(self.rollbacks), hit_max)


def _adam(module: ProbeModule, lr: float) -> torch.optim.Adam:
    """Adam over a probe's parameters, one fused kernel per step where torch has one for their
    device: a probe's three small tensors cost more in per-tensor dispatch than in arithmetic."""
    fused = module.proj.device.type in ("cpu", "cuda")
    return torch.optim.Adam(module.parameters(), lr=lr, fused=fused)


def _fit_many(train, valid, vocabs, ranks, config: TrainConfig, random_state: int,
              return_errors: bool) -> list[FitResult | ProbeDivergedError]:
    train_sets = [_as_list(t) for t in train]
    valid_sets = [_as_list(v) for v in valid]
    if not train_sets or len(train_sets) != len(valid_sets):
        raise InputError(f"{len(train_sets)} training and {len(valid_sets)} validation members")
    ranks = [ranks] * len(train_sets) if isinstance(ranks, int) else list(ranks)
    if len(ranks) != len(train_sets):
        raise InputError(f"{len(ranks)} ranks for {len(train_sets)} members")
    if any(r < 1 for r in ranks):
        raise InputError(f"ranks must be positive, not {ranks}")
    for sets in (train_sets, valid_sets):
        _check_same_snippets(sets)
    label_sizes = {lang: (len(c), len(u)) for lang, (c, u) in vocabs.items()}
    runs = []
    for k, (t, v, rank) in enumerate(zip(train_sets, valid_sets, ranks)):
        hidden = t[0].hidden
        if any(d.hidden != hidden for d in t + v):
            raise InputError("all splits need token vectors of the same width")
        generator = torch.Generator().manual_seed(random_state)
        module = ProbeModule(hidden, rank, label_sizes, generator, config.init).to(config.device)
        runs.append(_Run(module, t, v, config, name=f"probe {k}" if len(ranks) > 1 else "probe"))
    train_targets = [_Targets.of(d, *vocabs[d.language]) for d in train_sets[0]]
    valid_targets = [_Targets.of(d, *vocabs[d.language]) for d in valid_sets[0]]

    for run, loss in zip(runs, _valid_losses(runs, valid_targets, config.device)):
        run.begin(loss)
    rng = np.random.default_rng(random_state)
    for epoch in progress(range(1, config.max_epochs + 1), desc=f"AST-Probe: training {len(runs)} probes",
                          unit="epoch"):
        active = [run for run in runs if not run.done]
        if not active:
            break
        train_losses = _train_epoch(active, train_targets, config, rng)
        valid_losses = _valid_losses(active, valid_targets, config.device)
        for run, train_loss, valid_loss in zip(active, train_losses, valid_losses):
            run.end_epoch(epoch, train_loss, valid_loss)
    results = [run.result() for run in runs]
    errors = [r for r in results if isinstance(r, ProbeDivergedError)]
    if errors and not return_errors:
        raise errors[0]
    return results


def _check_same_snippets(members: list[list[ProbeData]]) -> None:
    """Every member's splits: same languages, same snippets, same gold, in the same order."""
    first = members[0]
    for other in members[1:]:
        if len(other) != len(first) or any(
            a.language != b.language or not _same_gold(a.gold, b.gold) for a, b in zip(first, other)
        ):
            raise InputError("probes trained together need the same snippets and gold tuples")


def _same_gold(a: TupleBatch, b: TupleBatch) -> bool:
    return a is b or (
        np.array_equal(a.lengths, b.lengths) and np.array_equal(a.d, b.d) and np.array_equal(a.c, b.c)
        and np.array_equal(a.u, b.u) and a.c_names == b.c_names and a.u_names == b.u_names
    )


def _groups(runs: list[_Run]) -> list[list[_Run]]:
    """Runs by (hidden, rank), in order of first appearance: each group trains as one stack."""
    by_shape: dict[tuple[int, int], list[_Run]] = {}
    for run in runs:
        by_shape.setdefault(run.shape, []).append(run)
    return list(by_shape.values())


def _step(modules: Sequence[ProbeModule], optimizers: Sequence[torch.optim.Optimizer], h: torch.Tensor,
          batch: _Batch, orthogonality_weight: float) -> list[float]:
    """One optimiser step of every probe of a stack on its vectors h (S, n, hidden); returns each
    probe's loss (penalty included). The gradient of the summed loss for one probe's parameters
    is that of its own loss: the probes share nothing."""
    lang = batch.language
    proj = torch.stack([m.proj for m in modules])
    loss = stacked_loss(h, proj, torch.stack([m.vectors_c[lang] for m in modules]),
                        torch.stack([m.vectors_u[lang] for m in modules]), batch.targets).total()
    loss = loss + orthogonality_weight * orthogonality(proj)
    for opt in optimizers:
        opt.zero_grad()
    loss.sum().backward()
    for opt in optimizers:
        opt.step()
    return loss.detach().tolist()


def _train_epoch(runs: list[_Run], targets: list[_Targets], config: TrainConfig, rng) -> list[float]:
    """One shuffled pass over the batches for every run; each run's mean batch loss."""
    groups = _groups(runs)
    for run in runs:
        run.module.train()
    totals = {id(run): 0.0 for run in runs}
    steps = 0
    for which, ids in _epoch_batches([len(t) for t in targets], config.batch_size, rng):
        batch = targets[which].batch(ids, config.device)
        gathered: dict[int, torch.Tensor] = {}
        for group in groups:
            h = _stack([run.train[which].vectors for run in group], batch.tok, config.device, gathered)
            losses = _step([run.module for run in group], [run.optimizer for run in group], h, batch,
                           config.orthogonality)
            for run, loss in zip(group, losses):
                totals[id(run)] += loss
        steps += 1
    return [totals[id(run)] / max(steps, 1) for run in runs]


def _valid_losses(runs: list[_Run], targets: list[_Targets], device: str) -> list[float]:
    """Each run's loss (no penalty) on its validation splits: sums over all batches / counts."""
    groups = _groups(runs)
    parts: dict[int, list[LossParts]] = {id(run): [] for run in runs}
    for run in runs:
        run.module.eval()
    with torch.no_grad():
        for which, tgt in enumerate(targets):
            for ids in _eval_batches(len(tgt)):
                batch = tgt.batch(ids, device)
                gathered: dict[int, torch.Tensor] = {}
                for group in groups:
                    # A few members at a time, so that the gathered vectors stay within bounds.
                    width = max(1, _EVAL_FLOATS // max(1, batch.tok.size * group[0].shape[0]))
                    for k in range(0, len(group), width):
                        chunk = group[k : k + width]
                        h = _stack([run.valid[which].vectors for run in chunk], batch.tok, device, gathered)
                        lang = batch.language
                        stacked = stacked_loss(h, torch.stack([r.module.proj for r in chunk]),
                                               torch.stack([r.module.vectors_c[lang] for r in chunk]),
                                               torch.stack([r.module.vectors_u[lang] for r in chunk]),
                                               batch.targets)
                        for s, run in enumerate(chunk):
                            parts[id(run)].append(_member_parts(stacked, s))
    return [_mean_loss(parts[id(run)]) for run in runs]


def _member_parts(parts: LossParts, s: int) -> LossParts:
    return LossParts(parts.d_sum[s], parts.d_count, parts.c_sum[s], parts.c_count, parts.u_sum[s],
                     parts.u_count)


def train_epoch(
    module: ProbeModule,
    optimizer: torch.optim.Optimizer,
    train: ProbeData | Sequence[ProbeData],
    vocabs: dict[str, tuple[LabelVocab, LabelVocab]],
    *,
    config: TrainConfig = TrainConfig(),
    rng: np.random.Generator,
) -> float:
    """One pass over the training data in shuffled batches; returns the mean batch loss
    (penalty included). `fit` runs this once per epoch."""
    splits = _as_list(train)
    run = _Run(module, splits, [], config, optimizer)
    return _train_epoch([run], [_Targets.of(d, *vocabs[d.language]) for d in splits], config, rng)[0]


def train_step(
    module: ProbeModule,
    optimizer: torch.optim.Optimizer,
    vectors: torch.Tensor,
    targets: FlatTargets,
    language: str,
    orthogonality: float = ORTHOGONALITY_WEIGHT,
) -> float:
    """One optimiser step on a flat batch: float32 vectors (n, hidden) and the batch's gold
    (see `FlatTargets`); returns the loss (penalty included)."""
    batch = _Batch(np.arange(vectors.shape[0]), targets, language)
    return _step([module], [optimizer], vectors[None], batch, orthogonality)[0]


def predict(
    module: ProbeModule,
    data: ProbeData,
    vocabs: tuple[LabelVocab, LabelVocab],
    device: str = "cpu",
) -> Prediction:
    """Predicted (d, c, u) of every snippet (argmax labels), with loss and accuracies."""
    c_vocab, u_vocab = vocabs
    enc = _Targets.of(data, c_vocab, u_vocab)
    dhat, c_pred, u_pred = [], [], []
    parts: list[LossParts] = []
    right_pairs = torch.zeros((), dtype=torch.float64)
    module.eval()
    with torch.no_grad():
        for ids in _eval_batches(len(data)):
            tok, lay, d, c, u = enc.reference_batch(ids, device)
            h = torch.empty((tok.size, data.hidden), dtype=torch.float32, device=device)
            out = module(_gather(data.vectors, tok, h), lay.split_index, data.language)
            parts.append(loss_parts(*out, d, c, u, lay))
            right_pairs += _ordered_right(out[0], d, lay)
            dhat.append(out[0].double().cpu().numpy())
            c_pred.append(out[1].argmax(dim=1).cpu().numpy())
            u_pred.append(out[2].argmax(dim=1).cpu().numpy())
    gold_pairs = sum(float(p.d_count) for p in parts)
    c_hat = np.concatenate(c_pred)
    u_hat = np.concatenate(u_pred)
    tuples = TupleBatch(
        lengths=data.gold.lengths,
        d=np.concatenate(dhat),
        c=c_hat,
        u=u_hat,
        c_names=c_vocab.labels,
        u_names=u_vocab.labels,
    )
    return Prediction(
        tuples=tuples,
        loss=_mean_loss(parts),
        acc_c=_accuracy(c_hat, enc.c),
        acc_u=_accuracy(u_hat, enc.u),
        d_pairs=float(right_pairs) / gold_pairs if gold_pairs else 0.0,
    )


def evaluate(
    module: ProbeModule,
    data: ProbeData,
    vocabs: tuple[LabelVocab, LabelVocab],
    device: str = "cpu",
) -> ProbeScores:
    """Recover every snippet's tree from the probe's predictions and score it (see module doc)."""
    pred = predict(module, data, vocabs, device)
    per = score(pred.tuples, data.gold)
    means = per.mean()
    return ProbeScores(
        precision=means["precision"],
        recall=means["recall"],
        f1=means["f1"],
        acc_c=pred.acc_c,
        acc_u=pred.acc_u,
        d_pairs=pred.d_pairs,
        loss=pred.loss,
        per_snippet=per,
    )


def _accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    if gold.size == 0:
        return 0.0
    return float(((pred == gold) & (gold != UNKNOWN_ID)).mean())


def _ordered_right(dhat: torch.Tensor, d_gold: torch.Tensor, lay: BatchLayout) -> torch.Tensor:
    """Number of gold-ordered pairs (d_i > d_j, same snippet) with dhat_i > dhat_j."""
    ordered = d_gold[lay.pair_a] > d_gold[lay.pair_b]
    right = dhat[lay.pair_a] > dhat[lay.pair_b]
    return (ordered & right).sum().double().cpu()


def _mean_loss(parts: list[LossParts]) -> float:
    fields = ("d_sum", "d_count", "c_sum", "c_count", "u_sum", "u_count")
    summed = LossParts(*(sum(getattr(p, f).double().cpu() for p in parts) for f in fields))
    return float(summed.total())


def _eval_batches(n: int) -> list[np.ndarray]:
    """Snippet ids 0..n-1 in evaluation batches of about `_EVAL_BATCH`."""
    return np.array_split(np.arange(n), max(1, math.ceil(n / _EVAL_BATCH)))


def _epoch_batches(sizes: Sequence[int], batch_size: int, rng: np.random.Generator):
    """(split, snippet ids) of one epoch: each split (of `sizes` snippets) shuffled and cut
    into batches, and the batches of all splits interleaved in a random order."""
    batches = []
    for which, size in enumerate(sizes):
        order = rng.permutation(size)
        batches += [(which, order[i : i + batch_size]) for i in range(0, order.size, batch_size)]
    for k in rng.permutation(len(batches)):
        yield batches[k]


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated aranges [starts[k], starts[k] + counts[k])."""
    total = int(counts.sum())
    offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    return np.arange(total) + offsets


def _as_list(x) -> list[ProbeData]:
    return [x] if isinstance(x, ProbeData) else list(x)

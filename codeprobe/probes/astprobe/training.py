"""Fit and evaluate a probe on precomputed token vectors.

The spec's recipe: Adam (lr 1e-3), batches of 32 snippets, loss L_d + L_c + L_u + 5 ||B^T B - I||^2,
ReduceLROnPlateau(factor 0.1, patience 0) on the validation loss without the penalty, at most 20
epochs, early stop after 5 epochs without improvement, keep the best-validation checkpoint.

Batches are gathered from one flat (tokens, hidden) tensor by index, with no per-snippet
Python. The validation loss is the mean over the whole split (sums over all batches divided by
all counts), not the mean of batch means.

Divergence guard: an epoch whose training or validation loss is not finite, or exceeds 100 times
its value at initialisation, is rolled back to the best checkpoint (or the initial state) and
the learning rate divided by 10; such epochs are listed in `FitResult.rollbacks`, and a fit that never got a
finite validation loss raises `ProbeDivergedError` instead of returning an untrained probe.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from codeprobe.errors import CodeprobeError, InputError
from codeprobe.probes.astprobe.probe import ORTHOGONALITY_WEIGHT, BatchLayout, LossParts, ProbeModule, layout, loss_parts
from codeprobe.probes.astprobe.recovery import SnippetScores, TupleBatch, score
from codeprobe.probes.astprobe.vocab import UNKNOWN_ID, LabelVocab
from codeprobe.progress import progress

log = logging.getLogger("codeprobe.astprobe")

_BLOW_UP = 100.0
_EVAL_BATCH = 256


class ProbeDivergedError(CodeprobeError, RuntimeError):
    """Training never reached a finite validation loss (the probe would be meaningless)."""


@dataclass(frozen=True)
class TrainConfig:
    """The spec's optimisation settings (change them only to experiment)."""

    lr: float = 1e-3
    batch_size: int = 32
    max_epochs: int = 20
    patience: int = 5
    orthogonality: float = ORTHOGONALITY_WEIGHT
    lr_factor: float = 0.1
    device: str = "cpu"
    threads: int | None = None  # torch CPU threads while fitting (None: leave torch's setting)


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


@dataclass(frozen=True, eq=False)
class _Encoded:
    """ProbeData with label ids for one vocabulary pair, and index helpers."""

    data: ProbeData
    c: np.ndarray
    u: np.ndarray
    token_start: np.ndarray
    split_start: np.ndarray

    @classmethod
    def of(cls, data: ProbeData, c_vocab: LabelVocab, u_vocab: LabelVocab) -> _Encoded:
        lengths = data.gold.lengths
        return cls(
            data=data,
            c=c_vocab.encode(data.gold.c_names)[data.gold.c] if data.gold.c.size else data.gold.c,
            u=u_vocab.encode(data.gold.u_names)[data.gold.u],
            token_start=np.cumsum(lengths) - lengths,
            split_start=np.cumsum(lengths - 1) - (lengths - 1),
        )

    def batch(self, ids: np.ndarray, device: str):
        """(vectors float32 (n, hidden), layout, d, c, u) of snippets `ids`."""
        lengths = self.data.gold.lengths[ids]
        tok = _ranges(self.token_start[ids], lengths)
        split = _ranges(self.split_start[ids], lengths - 1)
        vectors = self.data.vectors
        if isinstance(vectors, torch.Tensor):
            h = vectors[torch.as_tensor(tok)]
        else:
            h = torch.from_numpy(np.asarray(vectors[tok]))
        h = h.to(device=device, dtype=torch.float32)
        as_t = lambda a, dt=torch.long: torch.as_tensor(a, dtype=dt, device=device)  # noqa: E731
        return (
            h,
            layout(lengths, device),
            as_t(self.data.gold.d[split], torch.float32),
            as_t(self.c[split]),
            as_t(self.u[tok]),
        )


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
    """

    module: ProbeModule
    best_epoch: int
    best_valid_loss: float
    history: tuple[EpochRecord, ...]
    rollbacks: tuple[int, ...] = field(default=())


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
    """
    if config.threads is None:
        return _fit(train, valid, vocabs, rank, config, random_state)
    before = torch.get_num_threads()
    # The probe's matrices are small: on a busy machine one thread beats OpenMP's spinning ones.
    torch.set_num_threads(config.threads)
    try:
        return _fit(train, valid, vocabs, rank, config, random_state)
    finally:
        torch.set_num_threads(before)


def _fit(train, valid, vocabs, rank: int, config: TrainConfig, random_state: int) -> FitResult:
    train_sets = _as_list(train)
    valid_sets = _as_list(valid)
    hidden = train_sets[0].hidden
    if any(d.hidden != hidden for d in train_sets + valid_sets):
        raise InputError("all splits need token vectors of the same width")
    if rank < 1:
        raise InputError(f"rank must be positive, not {rank}")
    generator = torch.Generator().manual_seed(random_state)
    module = ProbeModule(
        hidden, rank, {lang: (len(c), len(u)) for lang, (c, u) in vocabs.items()}, generator
    ).to(config.device)
    enc_train = [_Encoded.of(d, *vocabs[d.language]) for d in train_sets]
    enc_valid = [_Encoded.of(d, *vocabs[d.language]) for d in valid_sets]

    optimizer = torch.optim.Adam(module.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.lr_factor, patience=0
    )
    rng = np.random.default_rng(random_state)
    best_state = copy.deepcopy(module.state_dict())
    best_loss, best_epoch, stale = math.inf, 0, 0
    init_valid = _split_loss(module, enc_valid, config.device)
    with torch.no_grad():
        init_train = init_valid + config.orthogonality * float(module.orthogonality())
    history: list[EpochRecord] = []
    rollbacks: list[int] = []
    for epoch in progress(range(1, config.max_epochs + 1), desc="AST-Probe training", unit="epoch"):
        train_loss = _train_epoch(module, optimizer, enc_train, config, rng)
        valid_loss = _split_loss(module, enc_valid, config.device)
        lr = optimizer.param_groups[0]["lr"]
        history.append(EpochRecord(epoch, train_loss, valid_loss, lr))
        log.info("epoch %d: train loss %.4f, validation loss %.4f, lr %.1e", epoch, train_loss, valid_loss, lr)
        blew_up = not (
            train_loss <= _BLOW_UP * max(init_train, 1.0) and valid_loss <= _BLOW_UP * max(init_valid, 1.0)
        )  # also true for NaN
        if blew_up:
            log.warning("epoch %d diverged (train loss %s): rolled back, lr divided by 10", epoch, train_loss)
            rollbacks.append(epoch)
            module.load_state_dict(best_state)
            optimizer = torch.optim.Adam(module.parameters(), lr=lr * config.lr_factor)
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=config.lr_factor, patience=0
            )
            stale += 1
        else:
            scheduler.step(valid_loss)
            if valid_loss < best_loss:
                best_loss, best_epoch, stale = valid_loss, epoch, 0
                best_state = copy.deepcopy(module.state_dict())
            else:
                stale += 1
        if stale >= config.patience:
            break
    if best_epoch == 0:
        raise ProbeDivergedError(
            f"the probe diverged: no finite validation loss in {len(history)} epochs"
        )
    module.load_state_dict(best_state)
    module.eval()
    return FitResult(module, best_epoch, best_loss, tuple(history), tuple(rollbacks))


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
    return _train_epoch(module, optimizer, [_Encoded.of(d, *vocabs[d.language]) for d in _as_list(train)],
                        config, rng)


def train_step(
    module: ProbeModule,
    optimizer: torch.optim.Optimizer,
    vectors: torch.Tensor,
    lay: BatchLayout,
    d: torch.Tensor,
    c: torch.Tensor,
    u: torch.Tensor,
    language: str,
    orthogonality: float = ORTHOGONALITY_WEIGHT,
) -> float:
    """One optimiser step on a flat batch: float32 vectors (N, hidden), its `layout`, gold d,
    c ids and u ids; returns the loss (penalty included)."""
    parts = loss_parts(*module(vectors, lay.split_index, language), d, c, u, lay)
    loss = parts.total() + orthogonality * module.orthogonality()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def _train_epoch(module, optimizer, splits: list[_Encoded], config: TrainConfig, rng) -> float:
    module.train()
    total, steps = 0.0, 0
    for which, ids in _epoch_batches(splits, config.batch_size, rng):
        enc = splits[which]
        h, lay, d, c, u = enc.batch(ids, config.device)
        total += train_step(module, optimizer, h, lay, d, c, u, enc.data.language, config.orthogonality)
        steps += 1
    return total / max(steps, 1)


def predict(
    module: ProbeModule,
    data: ProbeData,
    vocabs: tuple[LabelVocab, LabelVocab],
    device: str = "cpu",
) -> Prediction:
    """Predicted (d, c, u) of every snippet (argmax labels), with loss and accuracies."""
    c_vocab, u_vocab = vocabs
    enc = _Encoded.of(data, c_vocab, u_vocab)
    dhat, c_pred, u_pred = [], [], []
    parts: list[LossParts] = []
    right_pairs = torch.zeros((), dtype=torch.float64)
    module.eval()
    with torch.no_grad():
        for ids in np.array_split(np.arange(len(data)), max(1, math.ceil(len(data) / _EVAL_BATCH))):
            h, lay, d, c, u = enc.batch(ids, device)
            out = module(h, lay.split_index, data.language)
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


def _split_loss(module: ProbeModule, splits: list[_Encoded], device: str) -> float:
    parts = []
    module.eval()
    with torch.no_grad():
        for enc in splits:
            n = len(enc.data)
            for ids in np.array_split(np.arange(n), max(1, math.ceil(n / _EVAL_BATCH))):
                h, lay, d, c, u = enc.batch(ids, device)
                parts.append(loss_parts(*module(h, lay.split_index, enc.data.language), d, c, u, lay))
    return _mean_loss(parts)


def _mean_loss(parts: list[LossParts]) -> float:
    fields = ("d_sum", "d_count", "c_sum", "c_count", "u_sum", "u_count")
    summed = LossParts(*(sum(getattr(p, f).double().cpu() for p in parts) for f in fields))
    return float(summed.total())


def _epoch_batches(splits: list[_Encoded], batch_size: int, rng: np.random.Generator):
    """(split, snippet ids) of one epoch: each split shuffled and cut into batches, and the
    batches of all splits interleaved in a random order."""
    batches = []
    for which, enc in enumerate(splits):
        order = rng.permutation(len(enc.data))
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

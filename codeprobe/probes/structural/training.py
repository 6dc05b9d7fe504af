"""Training structural probes (Hewitt & Manning, "A Structural Probe for Finding Syntax in Word
Representations", NAACL 2019, N19-1419), one per hidden state, all at once.

The probes. B is (hidden x rank); for token vectors h_1..h_n of one snippet:
- distance probe: d_ij = ||B (h_i - h_j)||^2, fitted to the gold distance of tokens i, j;
- depth probe: ||B h_i||^2, fitted to token i's depth in the token tree.

The losses, the reference's (`loss.py`: L1DistanceLoss, L1DepthLoss): per snippet the L1 error
summed over its n^2 ordered token pairs divided by n^2 (distance; the diagonal is 0 on both
sides), or summed over its n tokens divided by n (depth); a batch's loss is the mean over its
snippets, and so is the validation loss, over the whole validation split.

Stacked training (`fit_stacked`): the S probes of S hidden states of the same snippets are one
(S, hidden, rank) tensor, scored on a padded batch (S, b, n, hidden) with batched products
and updated by one Adam (`StackedAdam`, torch's update with a learning rate per probe). Each
probe keeps its own plateau schedule, best epoch and early stopping, and leaves the stack when
it stops. Every probe starts from the same initialisation (the seed's) and sees the same batch
order, so each gets what training it alone gives (`fit_stacked` with S = 1), up to float
rounding of the batched products: the probes share nothing, and the gradient of the summed
loss for one probe's B is that of its own loss.

Distances are computed from Gram matrices (||t_i||^2 + ||t_j||^2 - 2 t_i.t_j, t = B h, no
(n, n, rank) tensor) of vectors centred per snippet first: a distance does not change when
every vector of the snippet moves by the same amount, and centring keeps the squared norms,
hence float32's cancellation error, small.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from codeprobe.errors import InputError
from codeprobe.interrupt import check_interrupted
from codeprobe.probes.structural.config import INIT_RANGE, LENGTH_POOL_BATCHES, StructuralTrainConfig
from codeprobe.probes.structural.data import Batch, ProbeInputs
from codeprobe.progress import progress

ADAM_BETAS = (0.9, 0.999)  # torch's defaults, which the reference used
ADAM_EPS = 1e-8
PLATEAU_THRESHOLD = 1e-4  # ReduceLROnPlateau's defaults: relative threshold, smallest change
PLATEAU_EPS = 1e-8


def batch_losses(kind: str, proj: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The loss of each of S probes on one batch (module docstring).

    Args:
        kind: "distance" or "depth".
        proj: (S, hidden, rank), the probes' B.
        batch: its `h` holds the same S hidden states.

    Returns:
        (S,): the mean over the batch's snippets of each snippet's normalised L1 error.
    """
    s, b, width, hidden = batch.h.shape
    # One (b * n, hidden) @ (hidden, rank) product per probe: B's gradient is then one product
    # too, not b per-snippet products summed through a (S, b, hidden, rank) tensor.
    t = (batch.h.reshape(s, b * width, hidden) @ proj).view(s, b, width, -1)  # padding rows stay 0
    n = batch.lengths
    if kind == "depth":
        err = (t.square().sum(-1) - batch.gold).abs()
        return torch.where(batch.mask, err, 0).sum(-1).div(n).mean(-1)
    t = (t - t.sum(-2, keepdim=True) / n[:, None, None]) * batch.mask[..., None]
    err = (_gram_distances(t) - batch.gold).abs()
    width = batch.mask.shape[1]
    pairs = batch.mask[:, :, None] & batch.mask[:, None, :] & ~torch.eye(width, dtype=torch.bool, device=t.device)
    return torch.where(pairs, err, 0).sum((-2, -1)).div(n * n).mean(-1)


def predict_snippet(kind: str, proj: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The probes' predictions for one snippet, in float64.

    Args:
        kind: "distance" or "depth".
        proj: (S, hidden, rank), the probes' B.
        x: (S, n, hidden), the snippet's token vectors at the S hidden states.

    Returns:
        float64 (S, n, n) squared distances (symmetric, zero diagonal, >= 0), or (S, n) squared
        norms (the predicted depths).
    """
    t = np.asarray(x, dtype=np.float64) @ proj.astype(np.float64)
    if kind == "depth":
        return np.square(t).sum(-1)
    t -= t.mean(axis=1, keepdims=True)
    d = _gram_distances(t)
    d = np.maximum((d + d.swapaxes(-1, -2)) / 2, 0.0)  # exact symmetry; rounding can dip below 0
    idx = np.arange(d.shape[-1])
    d[:, idx, idx] = 0.0
    return d


def _gram_distances(t):
    """Squared distances (..., n, n) between the rows of t (..., n, rank), torch or numpy."""
    sq = (t * t).sum(-1)
    return sq[..., :, None] + sq[..., None, :] - 2 * (t @ t.swapaxes(-1, -2))


def initial_projection(hidden: int, rank: int, random_state: int) -> torch.Tensor:
    """float32 (hidden, rank): the reference's uniform(-0.05, 0.05) initialisation, drawn from a
    generator seeded with `random_state` (each stacked probe draws the same)."""
    generator = torch.Generator().manual_seed(random_state)
    return torch.empty((hidden, rank)).uniform_(-INIT_RANGE, INIT_RANGE, generator=generator)


class StackedAdam:
    """Adam (Kingma & Ba, arXiv:1412.6980) on a stack of S independent parameter tensors, one
    learning rate each: torch.optim.Adam's update (betas 0.9 and 0.999, eps 1e-8, no weight
    decay) applied to all S at once. The step count is shared: the members step together."""

    def __init__(self, like: torch.Tensor, lr: np.ndarray) -> None:
        self.m = torch.zeros_like(like)
        self.v = torch.zeros_like(like)
        self.steps = 0
        self.set_lr(lr)

    def set_lr(self, lr: np.ndarray) -> None:
        """float (S,): each member's learning rate from now on."""
        shape = (-1,) + (1,) * (self.m.ndim - 1)
        self.lr = torch.as_tensor(np.asarray(lr), dtype=self.m.dtype, device=self.m.device).view(shape)

    def step(self, param: torch.Tensor, grad: torch.Tensor) -> None:
        """Update `param` (S, ...) in place from its gradient."""
        beta1, beta2 = ADAM_BETAS
        self.steps += 1
        self.m.lerp_(grad, 1 - beta1)
        self.v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (self.v.sqrt() / math.sqrt(1 - beta2**self.steps)).add_(ADAM_EPS)
        param.sub_(self.lr / (1 - beta1**self.steps) * self.m / denom)

    def keep(self, rows: np.ndarray) -> None:
        """Keep members `rows` (bool (S,) or indices), drop the others' state."""
        index = torch.as_tensor(rows, device=self.m.device)
        self.m, self.v, self.lr = self.m[index], self.v[index], self.lr[index]


class PlateauSchedule:
    """torch's ReduceLROnPlateau(mode="min", factor, patience=0) for S members at once: after an
    epoch whose loss is not below the member's best by a relative `PLATEAU_THRESHOLD`, its
    learning rate is multiplied by `factor` (unless that changes it by `PLATEAU_EPS` or less)."""

    def __init__(self, n: int, lr: float, factor: float) -> None:
        self.lr = np.full(n, lr, dtype=np.float64)
        self.best = np.full(n, np.inf)
        self.factor = factor

    def step(self, members: np.ndarray, losses: np.ndarray) -> None:
        """Record one epoch's `losses` (float (k,)) of `members` (indices into the S)."""
        best = self.best[members]
        better = losses < best * (1 - PLATEAU_THRESHOLD)  # NaN is never better
        self.best[members] = np.where(better, losses, best)
        lr = self.lr[members]
        new = lr * self.factor
        self.lr[members] = np.where(~better & (lr - new > PLATEAU_EPS), new, lr)


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of one probe: its mean training loss (over the epoch's batches, weighted by
    their snippets), its validation loss after the epoch, and the learning rate it ran at."""

    epoch: int
    train_loss: float
    valid_loss: float
    lr: float


@dataclass(frozen=True)
class FitRecord:
    """How one probe's training went.

    Attributes:
        initial_valid_loss: the validation loss at initialisation (epoch 0).
        best_epoch: the epoch whose parameters the probe keeps: the last one that lowered the
            validation loss by more than `min_improvement`; 0 when none did (the probe is its
            initialisation).
        best_valid_loss: its validation loss.
        history: one record per epoch run.
        hit_max_epochs: the epoch budget, not early stopping, ended the training (the probe
            may not have converged).
    """

    initial_valid_loss: float
    best_epoch: int
    best_valid_loss: float
    history: tuple[EpochRecord, ...]
    hit_max_epochs: bool

    @property
    def epochs(self) -> int:
        return len(self.history)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FitRecord:
        return cls(
            initial_valid_loss=d["initial_valid_loss"],
            best_epoch=d["best_epoch"],
            best_valid_loss=d["best_valid_loss"],
            history=tuple(EpochRecord(**r) for r in d["history"]),
            hit_max_epochs=d["hit_max_epochs"],
        )


def fit_stacked(
    train: ProbeInputs,
    valid: ProbeInputs,
    kind: str,
    rank: int,
    *,
    config: StructuralTrainConfig = StructuralTrainConfig(),
    random_state: int = 0,
) -> tuple[np.ndarray, tuple[FitRecord, ...]]:
    """Train one probe per hidden state of the inputs, all at once (module docstring).

    Args:
        train, valid: the snippets to fit and to select the epoch on, with S hidden states each.
        kind: "distance" or "depth".
        rank: B's number of columns (>= 1).
        random_state: seeds the initialisation and the batch order.

    Returns:
        (float32 (S, hidden, rank), the probes at their best epochs; one `FitRecord` each).

    Raises:
        InputError: inputs of different widths or numbers of hidden states, or an initial
            validation loss that is not finite (vectors too large for float32).
    """
    if (train.vectors.n_states, train.vectors.hidden) != (valid.vectors.n_states, valid.vectors.hidden):
        raise InputError(
            f"training vectors are {train.vectors.n_states} x {train.vectors.hidden} (hidden states x width), "
            f"validation vectors {valid.vectors.n_states} x {valid.vectors.hidden}"
        )
    if config.threads is None:
        return _fit(train, valid, kind, rank, config, random_state)
    before = torch.get_num_threads()
    # The probes' matrices are small: on a busy machine one thread beats OpenMP's spinning ones.
    torch.set_num_threads(config.threads)
    try:
        return _fit(train, valid, kind, rank, config, random_state)
    finally:
        torch.set_num_threads(before)


def _fit(train: ProbeInputs, valid: ProbeInputs, kind: str, rank: int, config: StructuralTrainConfig, seed: int):
    n_states, device = train.vectors.n_states, config.device
    init = initial_projection(train.vectors.hidden, rank, seed)
    param = init.expand(n_states, -1, -1).contiguous().to(device).requires_grad_()
    best = param.detach().clone()
    active = np.arange(n_states)
    schedule = PlateauSchedule(n_states, config.lr, config.lr_factor)
    adam = StackedAdam(best, schedule.lr)
    best_loss = _valid_losses(kind, param.detach(), valid, active, config)
    if not np.isfinite(best_loss).all():
        raise InputError("the initial validation loss is not finite: the token vectors are too large for float32")
    initial = best_loss.copy()
    best_epoch = np.zeros(n_states, dtype=np.int64)
    stale = np.zeros(n_states, dtype=np.int64)
    history: list[list[EpochRecord]] = [[] for _ in range(n_states)]
    rng = np.random.default_rng(seed)
    for epoch in progress(
        range(1, config.max_epochs + 1), desc=f"structural {kind} probes: training {n_states}", unit="epoch"
    ):
        train_loss = _train_epoch(kind, param, adam, train, active, config, rng)
        valid_loss = _valid_losses(kind, param.detach(), valid, active, config)
        for k, member in enumerate(active.tolist()):
            history[member].append(
                EpochRecord(epoch, float(train_loss[k]), float(valid_loss[k]), float(schedule.lr[member]))
            )
        schedule.step(active, valid_loss)
        improved = valid_loss < best_loss[active] - config.min_improvement
        rows = active[improved]
        best[torch.as_tensor(rows, device=device)] = param.detach()[torch.as_tensor(improved, device=device)]
        best_loss[rows], best_epoch[rows] = valid_loss[improved], epoch
        stale[active] = np.where(improved, 0, stale[active] + 1)
        going = stale[active] < config.patience
        if not going.all():
            param = param.detach()[torch.as_tensor(going, device=device)].clone().requires_grad_()
            adam.keep(going)
            active = active[going]
        if active.size == 0:
            break
        adam.set_lr(schedule.lr[active])
    records = tuple(
        FitRecord(
            initial_valid_loss=float(initial[s]),
            best_epoch=int(best_epoch[s]),
            best_valid_loss=float(best_loss[s]),
            history=tuple(history[s]),
            hit_max_epochs=bool(len(history[s]) == config.max_epochs and stale[s] < config.patience),
        )
        for s in range(n_states)
    )
    return best.cpu().numpy(), records


def _train_epoch(
    kind: str,
    param: torch.Tensor,
    adam: StackedAdam,
    train: ProbeInputs,
    active: np.ndarray,
    config: StructuralTrainConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """One shuffled pass over the training snippets; float64 (k,): each active probe's mean
    batch loss, weighted by the batches' snippets."""
    total = np.zeros(active.size)
    for ids in epoch_batches(train.vectors.lengths, config, rng):
        check_interrupted()  # Ctrl-C / SIGTERM stop the training within a batch
        losses = batch_losses(kind, param, train.batch(ids, active, config.device))
        param.grad = None
        losses.sum().backward()
        with torch.no_grad():
            adam.step(param, param.grad)
        total += losses.detach().cpu().numpy() * ids.size
    return total / len(train)


def epoch_batches(lengths: np.ndarray, config: StructuralTrainConfig, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's batches of snippet indices, by `config.batching` (`StructuralTrainConfig`):
    "random" cuts one permutation in order (the reference's); "by_length" sorts each pool of
    `LENGTH_POOL_BATCHES` batches of it by length (stable: equal lengths stay shuffled) before
    cutting, then shuffles the batches."""
    order = rng.permutation(lengths.size)
    size = config.batch_size
    if config.batching == "by_length":
        pool = size * LENGTH_POOL_BATCHES
        pools = np.split(order, np.arange(pool, order.size, pool))
        order = np.concatenate([p[np.argsort(lengths[p], kind="stable")] for p in pools])
    batches = [order[start : start + size] for start in range(0, order.size, size)]
    if config.batching == "by_length":
        batches = [batches[k] for k in rng.permutation(len(batches))]
    return batches


def _valid_losses(
    kind: str, param: torch.Tensor, valid: ProbeInputs, active: np.ndarray, config: StructuralTrainConfig
) -> np.ndarray:
    """float64 (k,): each active probe's mean snippet loss over the validation split (batches
    of similar lengths: less padding)."""
    order = np.argsort(valid.vectors.lengths, kind="stable")
    total = np.zeros(active.size)
    with torch.no_grad():
        for start in range(0, order.size, config.batch_size):
            ids = order[start : start + config.batch_size]
            total += batch_losses(kind, param, valid.batch(ids, active, config.device)).cpu().numpy() * ids.size
    return total / order.size

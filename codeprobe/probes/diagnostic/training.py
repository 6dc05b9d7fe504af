"""Training diagnostic classifiers, one per hidden state, all at once.

A classifier is softmax regression (a linear probe, as Hewitt & Liang's, EMNLP 2019,
arXiv:1909.03368): p(y | h) = softmax(h W + b), fitted by cross-entropy, the mean over a batch's
tokens. The S classifiers of S hidden states are one float32 (S, hidden + 1, K) tensor (W with
b as its last row), updated by one Adam step on the sum of their losses: the gradient of that
sum for one classifier's parameters is its own loss's, so each gets what training it alone
gives, up to float rounding (the structural probes' scheme, whose `StackedAdam`,
`PlateauSchedule`, `FitRecord` and recipe, `StructuralTrainConfig`, this module reuses).

The recipe: batches of `config.batch_size` snippets (all their tokens), in an order drawn from
the seed each epoch; after each epoch the validation loss (mean cross-entropy per token, in
nats), a plateau schedule on it, the parameters kept when it improves by more than
`config.min_improvement`, and early stopping after `config.patience` epochs without. The
parameters start at 0 (every class equally likely, validation loss log K): softmax regression
is convex, so no random start is needed, and the seed only orders the batches.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from codeprobe.errors import InputError
from codeprobe.interrupt import check_interrupted
from codeprobe.probes.diagnostic.data import LabelledTokens
from codeprobe.probes.structural.config import StructuralTrainConfig
from codeprobe.probes.structural.training import EpochRecord, FitRecord, PlateauSchedule, StackedAdam
from codeprobe.progress import progress

VALID_CHUNK = 8192  # tokens per validation batch


def batch_losses(weights: torch.Tensor, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(k,): each classifier's mean cross-entropy (nats) over the tokens of a batch.

    Args:
        weights: (k, hidden + 1, K), W with b as its last row.
        h: (k, T, hidden), the tokens' vectors at each classifier's hidden state.
        labels: int64 (T,).
    """
    logits = _logits(weights, h)
    k, t, n_classes = logits.shape
    return F.cross_entropy(logits.reshape(k * t, n_classes), labels.repeat(k), reduction="none").view(k, t).mean(-1)


def _logits(weights, h):
    return h @ weights[:, :-1] + weights[:, -1:]


def predict_log_proba(weights: np.ndarray, h: np.ndarray) -> np.ndarray:
    """float64 (S, n, K): the S classifiers' natural-log class probabilities of n tokens.

    Args:
        weights: (S, hidden + 1, K).
        h: (S, n, hidden), the tokens' vectors at the S hidden states.
    """
    w = torch.from_numpy(np.asarray(weights, dtype=np.float64))
    return torch.log_softmax(_logits(w, torch.from_numpy(np.asarray(h, dtype=np.float64))), dim=-1).numpy()


def fit_classifiers(
    train: LabelledTokens,
    valid: LabelledTokens,
    n_classes: int,
    *,
    config: StructuralTrainConfig = StructuralTrainConfig(),
    random_state: int = 0,
) -> tuple[np.ndarray, tuple[FitRecord, ...]]:
    """Train one classifier per hidden state of the inputs, all at once (module docstring).

    Args:
        train, valid: the tokens to fit and to select the epoch on, with S hidden states each.
        n_classes: K (>= 2), the class ids being 0..K - 1.
        random_state: seeds the batch order.

    Returns:
        (float32 (S, hidden + 1, K), the classifiers at their best epochs; one `FitRecord`
        each, its losses in nats per token).

    Raises:
        InputError: inputs of different widths or numbers of hidden states, fewer than 2 classes.
    """
    if train.h.shape[::2] != valid.h.shape[::2]:
        raise InputError(
            f"training vectors are {train.h.shape[0]} x {train.h.shape[2]} (hidden states x width), "
            f"validation vectors {valid.h.shape[0]} x {valid.h.shape[2]}"
        )
    if n_classes < 2:
        raise InputError(f"a classifier needs at least 2 classes, got {n_classes}")
    if config.threads is None:
        return _fit(train, valid, n_classes, config, random_state)
    before = torch.get_num_threads()
    # The classifiers' products are small: on a busy machine one thread beats OpenMP's spinning ones.
    torch.set_num_threads(config.threads)
    try:
        return _fit(train, valid, n_classes, config, random_state)
    finally:
        torch.set_num_threads(before)


def _fit(train: LabelledTokens, valid: LabelledTokens, n_classes: int, config: StructuralTrainConfig, seed: int):
    n_states, device = train.h.shape[0], config.device
    param = torch.zeros((n_states, train.h.shape[2] + 1, n_classes), device=device, requires_grad=True)
    best = param.detach().clone()
    active = np.arange(n_states)
    schedule = PlateauSchedule(n_states, config.lr, config.lr_factor)
    adam = StackedAdam(best, schedule.lr)
    best_loss = _valid_losses(param.detach(), valid, active, device)
    initial = best_loss.copy()
    best_epoch = np.zeros(n_states, dtype=np.int64)
    stale = np.zeros(n_states, dtype=np.int64)
    history: list[list[EpochRecord]] = [[] for _ in range(n_states)]
    rng = np.random.default_rng(seed)
    for epoch in progress(
        range(1, config.max_epochs + 1), desc=f"diagnostic classifiers: training {n_states}", unit="epoch"
    ):
        train_loss = _train_epoch(param, adam, train, active, config, rng)
        valid_loss = _valid_losses(param.detach(), valid, active, device)
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
    param: torch.Tensor,
    adam: StackedAdam,
    train: LabelledTokens,
    active: np.ndarray,
    config: StructuralTrainConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """One shuffled pass over the training snippets; float64 (k,): each active classifier's
    mean loss per token over the epoch."""
    order = rng.permutation(len(train))
    total = np.zeros(active.size)
    for start in range(0, order.size, config.batch_size):
        check_interrupted()  # Ctrl-C / SIGTERM stop the training within a batch
        h, labels = train.batch(order[start : start + config.batch_size], active, config.device)
        losses = batch_losses(param, h, labels)
        param.grad = None
        losses.sum().backward()
        with torch.no_grad():
            adam.step(param, param.grad)
        total += losses.detach().cpu().numpy() * labels.numel()
    return total / train.n_tokens


def _valid_losses(param: torch.Tensor, valid: LabelledTokens, active: np.ndarray, device: str) -> np.ndarray:
    """float64 (k,): each active classifier's mean cross-entropy per validation token."""
    total = np.zeros(active.size)
    with torch.no_grad():
        for start in range(0, valid.n_tokens, VALID_CHUNK):
            stop = min(start + VALID_CHUNK, valid.n_tokens)
            h = valid.h[active, start:stop]
            h = torch.from_numpy(np.ascontiguousarray(h, dtype=np.float32)).to(device)
            labels = torch.from_numpy(valid.labels[start:stop]).to(device)
            total += batch_losses(param, h, labels).cpu().numpy() * (stop - start)
    return total / valid.n_tokens

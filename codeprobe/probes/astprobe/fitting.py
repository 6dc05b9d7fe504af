"""Fit probes on precomputed token hidden states (AST-Probe, arXiv 2206.11719), the recipe of
`TrainConfig`.

Several probes train together (`fit_many`): probes of the same snippets, each reading its own
token hidden states (one hidden state each, say), go through one pass over the batches. A batch
gathers the same rows from every probe's hidden states, (S, n, hidden), and probes of one shape
(hidden, rank) are scored with batched matrix products; each probe keeps its own parameters, Adam state,
learning-rate schedule, early stopping, best checkpoint and divergence guard (`ProbeRun`), so
its result is the one it gets trained alone (`fit`, which is `fit_many` of one probe) with the
same seed, up to float rounding. A probe that has stopped leaves the stack.

The validation loss is the mean over the whole split (sums over all batches divided by all
counts), not the mean of batch means.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from codeprobe.errors import InputError
from codeprobe.interrupt import check_interrupted
from codeprobe.probes.astprobe.evaluation import mean_loss
from codeprobe.probes.astprobe.probe import LossParts, ProbeModule, orthogonality, stacked_loss
from codeprobe.probes.astprobe.probe_data import ProbeData, as_list, stack
from codeprobe.probes.astprobe.probe_run import FitResult, ProbeDivergedError, ProbeRun
from codeprobe.probes.astprobe.targets import Batch, Targets, epoch_batches, eval_batches
from codeprobe.probes.astprobe.train_config import TrainConfig
from codeprobe.probes.astprobe.tuple_batch import TupleBatch
from codeprobe.probes.astprobe.vocab import LabelVocab
from codeprobe.progress import progress

_EVAL_FLOATS = 1 << 26  # at most this many gathered float32s (256 MiB) per evaluation forward


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

    Each probe ("member") has its own token hidden states (e.g. one hidden state each, or the
    same hidden state at several ranks) of the same snippets with the same gold tuples. Every member gets exactly
    what `fit` would give it alone with the same `random_state` (same initialisation, batch
    order, learning-rate schedule, early stopping, checkpoint and divergence guard), up to float
    rounding of the batched products. Members of one (hidden, rank) shape are stacked and scored
    with batched matrix products; the shapes share the batch loop, and members that read the
    same hidden-states array gather its rows once per batch (pass the same object). A member that has
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


def _fit_many(
    train, valid, vocabs, ranks, config: TrainConfig, random_state: int, return_errors: bool
) -> list[FitResult | ProbeDivergedError]:
    train_sets = [as_list(t) for t in train]
    valid_sets = [as_list(v) for v in valid]
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
            raise InputError("all splits need token hidden states of the same width")
        generator = torch.Generator().manual_seed(random_state)
        module = ProbeModule(hidden, rank, label_sizes, generator, config.init).to(config.device)
        runs.append(ProbeRun(module, t, v, config, name=f"probe {k}" if len(ranks) > 1 else "probe"))
    train_targets = [Targets.of(d, *vocabs[d.language]) for d in train_sets[0]]
    valid_targets = [Targets.of(d, *vocabs[d.language]) for d in valid_sets[0]]

    for run, loss in zip(runs, _valid_losses(runs, valid_targets, config.device)):
        run.begin(loss)
    rng = np.random.default_rng(random_state)
    for epoch in progress(
        range(1, config.max_epochs + 1), desc=f"AST-Probe: training {len(runs)} probes", unit="epoch"
    ):
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
        np.array_equal(a.lengths, b.lengths)
        and np.array_equal(a.d, b.d)
        and np.array_equal(a.c, b.c)
        and np.array_equal(a.u, b.u)
        and a.c_names == b.c_names
        and a.u_names == b.u_names
    )


def _groups(runs: list[ProbeRun]) -> list[list[ProbeRun]]:
    """Runs by (hidden, rank), in order of first appearance: each group trains as one stack."""
    by_shape: dict[tuple[int, int], list[ProbeRun]] = {}
    for run in runs:
        by_shape.setdefault(run.shape, []).append(run)
    return list(by_shape.values())


def _step(
    modules: Sequence[ProbeModule],
    optimizers: Sequence[torch.optim.Optimizer],
    h: torch.Tensor,
    batch: Batch,
    orthogonality_weight: float,
) -> list[float]:
    """One optimiser step of every probe of a stack on its hidden states h (S, n, hidden);
    returns each probe's loss (penalty included). The gradient of the summed loss for one probe's parameters
    is that of its own loss: the probes share nothing."""
    lang = batch.language
    proj = torch.stack([m.proj for m in modules])
    loss = stacked_loss(
        h,
        proj,
        torch.stack([m.vectors_c[lang] for m in modules]),
        torch.stack([m.vectors_u[lang] for m in modules]),
        batch.targets,
    ).total()
    loss = loss + orthogonality_weight * orthogonality(proj)
    for opt in optimizers:
        opt.zero_grad()
    loss.sum().backward()
    for opt in optimizers:
        opt.step()
    return loss.detach().tolist()


def _train_epoch(runs: list[ProbeRun], targets: list[Targets], config: TrainConfig, rng) -> list[float]:
    """One shuffled pass over the batches for every run; each run's mean batch loss."""
    groups = _groups(runs)
    for run in runs:
        run.module.train()
    totals = {id(run): 0.0 for run in runs}
    steps = 0
    for which, ids in epoch_batches([len(t) for t in targets], config.batch_size, rng):
        check_interrupted()  # Ctrl-C / SIGTERM stop a step's thread within a batch
        batch = targets[which].batch(ids, config.device)
        gathered: dict[int, torch.Tensor] = {}
        for group in groups:
            h = stack([run.train[which].hidden_states for run in group], batch.tok, config.device, gathered)
            losses = _step(
                [run.module for run in group], [run.optimizer for run in group], h, batch, config.orthogonality
            )
            for run, loss in zip(group, losses):
                totals[id(run)] += loss
        steps += 1
    return [totals[id(run)] / max(steps, 1) for run in runs]


def _valid_losses(runs: list[ProbeRun], targets: list[Targets], device: str) -> list[float]:
    """Each run's loss (no penalty) on its validation splits: sums over all batches / counts."""
    groups = _groups(runs)
    parts: dict[int, list[LossParts]] = {id(run): [] for run in runs}
    for run in runs:
        run.module.eval()
    with torch.no_grad():
        for which, tgt in enumerate(targets):
            for ids in eval_batches(len(tgt)):
                batch = tgt.batch(ids, device)
                gathered: dict[int, torch.Tensor] = {}
                for group in groups:
                    # A few members at a time, so that the gathered hidden states stay within bounds.
                    width = max(1, _EVAL_FLOATS // max(1, batch.tok.size * group[0].shape[0]))
                    for k in range(0, len(group), width):
                        chunk = group[k : k + width]
                        h = stack([run.valid[which].hidden_states for run in chunk], batch.tok, device, gathered)
                        lang = batch.language
                        stacked = stacked_loss(
                            h,
                            torch.stack([r.module.proj for r in chunk]),
                            torch.stack([r.module.vectors_c[lang] for r in chunk]),
                            torch.stack([r.module.vectors_u[lang] for r in chunk]),
                            batch.targets,
                        )
                        for s, run in enumerate(chunk):
                            parts[id(run)].append(_member_parts(stacked, s))
    return [mean_loss(parts[id(run)]) for run in runs]


def _member_parts(parts: LossParts, s: int) -> LossParts:
    return LossParts(parts.d_sum[s], parts.d_count, parts.c_sum[s], parts.c_count, parts.u_sum[s], parts.u_count)

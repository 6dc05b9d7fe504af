"""Early stopping ends a fit whose validation loss only creeps: a new best must beat the old by
`min_improvement` (relative) to reset patience; the paper preset keeps the spec's strict rule."""

from __future__ import annotations

import torch

from codeprobe.probes.astprobe.probe import ProbeModule
from codeprobe.probes.astprobe.probe_run import ProbeRun
from codeprobe.probes.astprobe.train_config import TrainConfig


def _run(config: TrainConfig) -> ProbeRun:
    module = ProbeModule(8, 2, {"python": (3, 3)}, torch.Generator().manual_seed(0))
    run = ProbeRun(module, [], [], config)
    run.begin(10.0)
    return run


def _feed(run: ProbeRun, losses) -> int:
    for epoch, loss in enumerate(losses, start=1):
        run.end_epoch(epoch, loss, loss)
        if run.done:
            return epoch
    return len(losses)


def test_creeping_losses_do_not_reset_patience():
    creeping = [5.0] + [5.0 - 1e-6 * k for k in range(1, 40)]
    run = _run(TrainConfig(patience=5, max_epochs=100))
    assert _feed(run, creeping) == 6  # stopped on patience ...
    assert run.best_epoch == 6  # ... keeping the lowest loss as the checkpoint


def test_the_paper_preset_counts_any_decrease():
    creeping = [5.0] + [5.0 - 1e-6 * k for k in range(1, 40)]
    run = _run(TrainConfig.paper(patience=5))
    assert TrainConfig.paper().min_improvement == 0.0
    assert _feed(run, creeping) == 20 and run.best_epoch == 20  # every creep is a new best


def test_real_improvements_still_count():
    falling = [5.0 * 0.9**k for k in range(12)] + [5.0 * 0.9**11] * 10
    run = _run(TrainConfig(patience=3, max_epochs=100))
    assert _feed(run, falling) == 15 and run.best_epoch == 12

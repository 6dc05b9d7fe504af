"""One probe's training run (`ProbeRun`): its optimiser, learning-rate schedule, divergence
guard, best checkpoint and early stopping, epoch after epoch, and what it ends with
(`FitResult`, or `ProbeDivergedError`).

Divergence guard: an epoch whose training or validation loss is not finite, or exceeds 100 times
its value at initialisation, is rolled back to the best checkpoint (or the initial state) and
the learning rate multiplied by `TrainConfig.lr_factor`; such epochs are listed in
`FitResult.rollbacks`, and a fit that never got a finite validation loss ends in
`ProbeDivergedError` instead of an untrained probe.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field

import torch

from codeprobe.errors import CodeprobeError
from codeprobe.probes.astprobe.probe import ProbeModule
from codeprobe.probes.astprobe.probe_data import ProbeData
from codeprobe.probes.astprobe.train_config import TrainConfig

log = logging.getLogger("codeprobe.astprobe")

_BLOW_UP = 100.0


class ProbeDivergedError(CodeprobeError, RuntimeError):
    """Training never reached a finite validation loss (the probe would be meaningless)."""


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


class ProbeRun:
    """One probe's training state: what `fit` keeps for a single probe, and `fit_many` for each
    of its members. `begin` records the losses at initialisation, `end_epoch` does the
    bookkeeping after each epoch (until `done`), `result` ends the run."""

    def __init__(
        self,
        module: ProbeModule,
        train: list[ProbeData],
        valid: list[ProbeData],
        config: TrainConfig,
        name: str = "probe",
    ) -> None:
        self.module, self.train, self.valid, self.config, self.name = module, train, valid, config, name
        self.optimizer = adam(module, config.lr)
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
        log.info(
            "%s, epoch %d: train loss %.4f, validation loss %.4f, lr %.1e", self.name, epoch, train_loss, valid_loss, lr
        )
        blew_up = not (
            train_loss <= _BLOW_UP * max(self.init_train, 1.0) and valid_loss <= _BLOW_UP * max(self.init_valid, 1.0)
        )  # also true for NaN
        if blew_up:
            log.warning(
                "%s, epoch %d diverged (train loss %s): rolled back, lr divided by 10", self.name, epoch, train_loss
            )
            self.rollbacks.append(epoch)
            self.module.load_state_dict(self.best_state)
            self.optimizer = adam(self.module, lr * config.lr_factor)
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
            return ProbeDivergedError(f"the probe diverged: no finite validation loss in {len(self.history)} epochs")
        self.module.load_state_dict(self.best_state)
        self.module.eval()
        hit_max = len(self.history) == self.config.max_epochs and self.stale < self.config.patience
        return FitResult(
            self.module, self.best_epoch, self.best_loss, tuple(self.history), tuple(self.rollbacks), hit_max
        )


def adam(module: ProbeModule, lr: float) -> torch.optim.Adam:
    """Adam over a probe's parameters, one fused kernel per step where torch has one for their
    device: a probe's three small tensors cost more in per-tensor dispatch than in arithmetic."""
    fused = module.proj.device.type in ("cpu", "cuda")
    return torch.optim.Adam(module.parameters(), lr=lr, fused=fused)

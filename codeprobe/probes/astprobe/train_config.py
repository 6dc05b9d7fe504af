"""A probe's optimisation settings (`TrainConfig`) and the AST-Probe paper's budget
(`PAPER_TRAINING`, arXiv 2206.11719), defined here and nowhere else.

The spec's recipe: Adam (lr 1e-3), batches of 32 snippets, loss L_d + L_c + L_u + 5 ||B^T B - I||^2,
ReduceLROnPlateau(factor 0.1, patience 0) on the validation loss without the penalty, early stop
after 5 epochs without improvement, keep the best-validation checkpoint. The paper stopped at 20
epochs at most, long before the probes converge; by default here a probe trains until validation
stops improving, by at least 0.01%, under a budget it rarely reaches; `PAPER_TRAINING` (or
`TrainConfig.paper()`) is the paper's budget.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from numbers import Integral, Real

from codeprobe.errors import InputError
from codeprobe.probes.astprobe.probe import INITS, ORTHOGONALITY_WEIGHT

DEFAULT_MAX_EPOCHS = 200
DEFAULT_MIN_IMPROVEMENT = 1e-4


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings: the spec's recipe, trained to convergence (`PAPER_TRAINING`, or
    `TrainConfig.paper()`: the paper's budget, arXiv 2206.11719).

    Defaults, and why. Measured with the packaged MiniLM on 1,065 standard-library functions
    (138 for validation), rank 128, every hidden state: validation loss was still falling at
    epoch 20 (8-36% above its final value) and reached its minimum, to 0.1%, between epochs 32
    and 68. With the paper's strict "lower" rule four of the seven probes ran to a 300-epoch
    cap: once the schedule has cut the learning rate to its floor (1e-8), the validation loss
    still creeps down by about 4e-7 of itself per epoch, which resets patience for ever. The
    rule below, replayed on the same histories, stops all seven after 38 to 76 epochs, at
    validation losses within 0.01% of their 300-epoch values.

    Attributes:
        lr: Adam's initial learning rate (>= 0; 0 leaves the probe at its initialisation).
        batch_size: snippets per batch (>= 1).
        max_epochs: most epochs (>= 1; default `DEFAULT_MAX_EPOCHS`, 200: about three times the
            longest measured run, so rarely reached; `FitResult.hit_max_epochs` says when it was).
        patience: stop after this many epochs without improvement (>= 1: patience is counted
            after each epoch, so 0 would end every fit after its first epoch).
        min_improvement: an epoch improves when its validation loss is below (1 -
            min_improvement) times the loss of the last epoch that improved, in [0, 1). Default
            1e-4, the relative threshold ReduceLROnPlateau itself uses to decide that an epoch
            did not improve; 0 is the paper's strict "lower". The kept checkpoint is the lowest
            validation loss either way.
        orthogonality: weight (>= 0) of ||B^T B - I||_F^2 in the training loss.
        lr_factor: ReduceLROnPlateau's factor, in (0, 1) (its patience is 0: every epoch without
            a lower validation loss multiplies the learning rate by it); also the divergence
            guard's.
        device: where the probes train.
        threads: torch CPU threads while fitting (None: leave torch's setting; else >= 1).
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
        InputError: a field out of its range or of the wrong type; the message names the field.
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
        _check_int("batch_size", self.batch_size, 1)
        _check_int("max_epochs", self.max_epochs, 1)
        _check_int("patience", self.patience, 1)
        _check_real("lr", self.lr, "a number >= 0", lambda x: x >= 0)
        _check_real("min_improvement", self.min_improvement, "a number in [0, 1)", lambda x: 0 <= x < 1)
        _check_real("orthogonality", self.orthogonality, "a number >= 0", lambda x: x >= 0)
        _check_real("lr_factor", self.lr_factor, "a number in (0, 1)", lambda x: 0 < x < 1)
        if self.threads is not None:
            _check_int("threads", self.threads, 1)
        if not isinstance(self.device, str) or not self.device:
            raise InputError(f"TrainConfig.device must be a device name such as 'cpu' or 'cuda', not {self.device!r}")
        if self.init not in INITS:
            raise InputError(f"TrainConfig.init must be one of {', '.join(map(repr, INITS))}, not {self.init!r}")

    @classmethod
    def paper(cls, **changes) -> TrainConfig:
        """`PAPER_TRAINING`, the paper's budget (arXiv 2206.11719), with `changes` to any field."""
        return dataclasses.replace(PAPER_TRAINING, **changes)

    def settings(self) -> dict[str, float | int | str]:
        """The settings that shape a probe's result (not where or on how many threads it ran)."""
        return {
            "lr": self.lr,
            "batch_size": self.batch_size,
            "orthogonality": self.orthogonality,
            "max_epochs": self.max_epochs,
            "patience": self.patience,
            "min_improvement": self.min_improvement,
            "lr_factor": self.lr_factor,
            "init": self.init,
        }


def _check_int(name: str, value, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < least:
        raise InputError(f"TrainConfig.{name} must be an integer >= {least}, not {value!r}")


def _check_real(name: str, value, what: str, ok) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or not ok(value):
        raise InputError(f"TrainConfig.{name} must be {what}, not {value!r}")


# The AST-Probe paper's training budget (arXiv 2206.11719): at most 20 epochs, patience 5, an
# epoch improves when its validation loss is lower at all, Adam lr 1e-3, 32 snippets per batch,
# orthogonality weight 5, ReduceLROnPlateau factor 0.1, the uniform init.
PAPER_TRAINING = TrainConfig(
    lr=1e-3,
    batch_size=32,
    max_epochs=20,
    patience=5,
    min_improvement=0.0,
    orthogonality=5.0,
    lr_factor=0.1,
    init="uniform",
)

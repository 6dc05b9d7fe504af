"""The structural probes' optimisation settings (`StructuralTrainConfig`): Hewitt & Manning's
recipe (NAACL 2019, N19-1419; the reference's `regimen.py` and its example configurations),
defined here and nowhere else.

The reference: Adam (lr 0.001), batches of 20 sentences, ReduceLROnPlateau(factor 0.1,
patience 0) on the development loss after every epoch, at most 40 epochs; an epoch improves
when its development loss is below the best so far by more than 0.0001 (absolute), its
parameters are then kept, and training stops after 5 epochs without improvement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

from codeprobe.errors import InputError

INIT_RANGE = 0.05  # the reference's uniform(-0.05, 0.05) initialisation of B
BATCHINGS = ("random", "by_length")
LENGTH_POOL_BATCHES = 16  # "by_length" sorts pools of this many batches' snippets


@dataclass(frozen=True)
class StructuralTrainConfig:
    """Optimisation settings of a structural probe (defaults: the reference's, see the module
    docstring).

    Attributes:
        lr: Adam's initial learning rate (>= 0; 0 leaves B at its initialisation).
        batch_size: snippets per batch (>= 1).
        max_epochs: most epochs (>= 1).
        patience: stop after this many epochs in a row without improvement (>= 1).
        min_improvement: an epoch improves when its validation loss is below the best so far
            by more than this (absolute, >= 0; the reference's 1e-4). The losses are mean L1
            errors in tree edges per token pair (distance) or per token (depth).
        lr_factor: the plateau schedule's factor, in (0, 1): after every epoch whose validation
            loss is not below the schedule's best by a relative 1e-4 (torch's
            ReduceLROnPlateau, patience 0), the learning rate is multiplied by it.
        batching: how an epoch's snippets are cut into batches: "random" (the reference's: one
            random permutation, cut in order) or "by_length" (the same permutation, each pool
            of `LENGTH_POOL_BATCHES` batches' snippets sorted by length before it is cut, and
            the batches then shuffled: a batch's snippets have similar lengths, so padding, and
            the time spent on it, shrinks; on the standard library's functions a random batch
            is about 3.6 times as long as its mean snippet, a pooled one 1.1 times).
        device: where the probes train ("cpu", "cuda", ...).
        threads: torch CPU threads while fitting (None: leave torch's setting; else >= 1).

    Raises:
        InputError: a field out of its range or of the wrong type; the message names the field.
    """

    lr: float = 1e-3
    batch_size: int = 20
    max_epochs: int = 40
    patience: int = 5
    min_improvement: float = 1e-4
    lr_factor: float = 0.1
    batching: str = "random"
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self) -> None:
        for name, least in (("batch_size", 1), ("max_epochs", 1), ("patience", 1)):
            _check_int(name, getattr(self, name), least)
        if self.threads is not None:
            _check_int("threads", self.threads, 1)
        _check_real("lr", self.lr, "a number >= 0", lambda x: x >= 0)
        _check_real("min_improvement", self.min_improvement, "a number >= 0", lambda x: x >= 0)
        _check_real("lr_factor", self.lr_factor, "a number in (0, 1)", lambda x: 0 < x < 1)
        if self.batching not in BATCHINGS:
            raise InputError(
                f"StructuralTrainConfig.batching must be one of {', '.join(map(repr, BATCHINGS))}, not {self.batching!r}"
            )
        if not isinstance(self.device, str) or not self.device:
            raise InputError(f"StructuralTrainConfig.device must be a device name such as 'cpu', not {self.device!r}")


def _check_int(name: str, value, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < least:
        raise InputError(f"StructuralTrainConfig.{name} must be an integer >= {least}, not {value!r}")


def _check_real(name: str, value, what: str, ok) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or not ok(value):
        raise InputError(f"StructuralTrainConfig.{name} must be {what}, not {value!r}")

"""The checks of an `ASTProbe`'s constructor arguments. scikit-learn's contract has `__init__`
store them as given and check nothing, so every method that runs the probe checks them first
(`check_params`)."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

from codeprobe.errors import InputError
from codeprobe.probes.astprobe.data import MODEL_INPUTS
from codeprobe.probes.astprobe.train_config import TrainConfig
from codeprobe.syntax.languages import canonical_language

if TYPE_CHECKING:
    from codeprobe.probes.astprobe.estimator import ASTProbe


def check_params(probe: ASTProbe) -> str:
    """Check the constructor's arguments (scikit-learn checks them when the estimator runs,
    not in `__init__`); return the canonical language name."""
    language = canonical_language(probe.language)
    for name, least in (("rank", 1), ("hidden_state", 0), ("extraction_batch_size", 1)):
        value = getattr(probe, name)
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < least:
            raise InputError(f"{name} must be an integer >= {least}, got {value!r}")
    if not isinstance(probe.random_state, numbers.Integral) or isinstance(probe.random_state, bool):
        raise InputError(f"random_state must be an integer, got {probe.random_state!r}")
    if not isinstance(probe.validation_fraction, numbers.Real) or not 0 <= probe.validation_fraction < 1:
        raise InputError(f"validation_fraction must lie in [0, 1), got {probe.validation_fraction!r}")
    if not isinstance(probe.config, TrainConfig):
        raise InputError(f"config must be a TrainConfig, got {type(probe.config).__name__}")
    if probe.model_input not in MODEL_INPUTS:
        raise InputError(f"model_input must be one of {', '.join(MODEL_INPUTS)}, got {probe.model_input!r}")
    return language

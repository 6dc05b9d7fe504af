"""The models a run probes: each model spec of a RunConfig is one model, or, when it names a
checkpoint series (`codeprobe.model.checkpoints`), one model per finished checkpoint.

A checkpoint's outputs live in their own folder, `<series>/step-<step>` under the run's
`cat/` and `astprobe/` folders, so a series that grows between runs of the same run folder (a
scheduled run on a training folder) adds folders and never touches the finished ones; each
step's work is keyed on the checkpoint's `ModelInfo.fingerprint` (over all its files), so a
checkpoint replaced in place is probed again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from codeprobe.errors import InputError, ModelLoadError
from codeprobe.model.checkpoints import find_checkpoints, is_checkpoint_series, series_name
from codeprobe.pipeline.registry import methods
from codeprobe.pipeline.runfolder import RunFolder, slug

STEP_FOLDER = re.compile(r"step-(\d+)")


@dataclass(frozen=True)
class ProbedModel:
    """One model a run probes.

    Attributes:
        spec: the RunConfig model entry it comes from.
        name: what the steps load: the spec itself, or a checkpoint's folder.
        folder: its output folder under `RUN/cat/` and `RUN/astprobe/`.
        step: the checkpoint's training step; None for a model that is not a checkpoint.
    """

    spec: str
    name: str
    folder: str
    step: int | None = None

    def key_fields(self) -> dict[str, Any]:
        """What identifies a checkpoint in its steps' keys beyond ModelInfo (whose fingerprint
        covers all its files): its training step."""
        return {} if self.step is None else {"step": self.step}


def probed_models(spec: str) -> list[ProbedModel]:
    """The models `spec` stands for now: itself, or its finished checkpoints by step.

    Raises:
        ModelLoadError, InputError: a series that cannot be read (see `find_checkpoints`).
    """
    if not is_checkpoint_series(spec):
        return [ProbedModel(spec, spec, slug(spec))]
    series = find_checkpoints(spec)
    return [
        ProbedModel(spec, str(c.path), f"{slug(series_name(spec))}/step-{c.step}", c.step) for c in series.checkpoints
    ]


def recorded_models(run: RunFolder, spec: str) -> list[ProbedModel]:
    """The models of `spec` that have outputs in `run`: for a series, every `step-<N>` folder,
    including checkpoints since deleted (Trainer's `save_total_limit` rotates them), by step."""
    if not is_checkpoint_series(spec):
        return [ProbedModel(spec, spec, slug(spec))]
    series = slug(series_name(spec))
    try:
        current = {m.step: m for m in probed_models(spec)}
    except (ModelLoadError, InputError):  # none left, or none finished: the recorded ones remain
        current = {}
    steps = set(current)
    for method in methods():
        for folder in run.model_folders(method.name, series):
            match = STEP_FOLDER.fullmatch(folder.name)
            if match:
                steps.add(int(match.group(1)))
    return [current.get(step) or ProbedModel(spec, "", f"{series}/step-{step}", step) for step in sorted(steps)]

"""The models a run probes: each model spec of a RunConfig is one model, or, when it names a
checkpoint series (`codeprobe.model.checkpoints`), one model per finished checkpoint.

A checkpoint's outputs live in their own folder, `<series>/step-<step>` under each method's
folder of the run, so a series that grows between runs of the same run folder (a scheduled run
on a training folder) adds folders and never touches the finished ones; each step's work is
keyed on the checkpoint's `ModelInfo.fingerprint` (over all its files), so a checkpoint replaced
in place is probed again.

A series can be trusted (`series_state`):
- **duplicates**: a checkpoint whose weights are byte-identical to an earlier step's
  (`codeprobe.model.fingerprint.weights_fingerprint`: the weight files alone; config.json and
  the tokenizer files are not compared, since a checkpoint's weights are what training changes)
  is a duplicate of the earliest such step: it is not loaded nor probed, its result is that
  step's, and the run log, `summary.json` (`series`) and the report name it; the report draws
  no point for it.
- **skipped**: a checkpoint that cannot be probed is left out with its reason, and the others
  are probed: one still being written ("incomplete"), without a model ("no model"), a hub
  revision without a step or not in the cache, or one that does not load ("cannot load", with
  the loader's one-line message: a config.json cut short, weights that do not fit, ...).
  A series none of whose checkpoints can be probed fails the run before any work, as a single
  model that does not load does.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from codeprobe.errors import InputError, ModelLoadError
from codeprobe.model.checkpoints import Checkpoint, find_checkpoints, is_checkpoint_series, series_name
from codeprobe.model.fingerprint import weights_fingerprint
from codeprobe.pipeline.registry import methods
from codeprobe.pipeline.runfolder import RunFolder, model_display_name, slug

STEP_FOLDER = re.compile(r"step-(\d+)")
CANNOT_LOAD = "cannot load"
_LOADER_PREFIX = re.compile(r"^cannot load '[^']*'(?: from \S+)?: ")


@dataclass(frozen=True)
class ProbedModel:
    """One model a run probes.

    Attributes:
        spec: the RunConfig model entry it comes from.
        name: what the steps load: the spec itself, or a checkpoint's folder (or
            `org/model@revision`).
        folder: its output folder under each method's folder of the run.
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


@dataclass(frozen=True)
class Skipped:
    """A checkpoint of a series that is not probed.

    Attributes:
        checkpoint: its folder, or `org/model@revision`.
        reason: why, in a few words, to count by ("incomplete", "no model", "cannot load", ...).
        step: its training step where known.
        detail: the loader's one-line message, for "cannot load".
    """

    checkpoint: str
    reason: str
    step: int | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "step": self.step, "reason": self.reason, "detail": self.detail}

    def text(self) -> str:
        where = model_display_name(self.checkpoint) + (f" (step {self.step})" if self.step is not None else "")
        return f"{where}: {self.reason}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class SeriesState:
    """What a model spec stands for now.

    Attributes:
        spec: the RunConfig model entry.
        models: the models to probe: the spec itself, or one per distinct checkpoint that loads,
            by step.
        duplicates: (checkpoint, step whose weights it repeats) per duplicate, by step.
        skipped: the checkpoints not probed, with their reasons.
        found: how many checkpoints (or named revisions) the spec matched; 0 for a single model.
    """

    spec: str
    models: tuple[ProbedModel, ...]
    duplicates: tuple[tuple[ProbedModel, int], ...] = ()
    skipped: tuple[Skipped, ...] = ()
    found: int = 0
    is_series: bool = field(default=False)

    @property
    def duplicate_of(self) -> dict[int, int]:
        """{duplicate's step: the earlier step whose weights it repeats}."""
        return {m.step: of for m, of in self.duplicates if m.step is not None}

    def as_dict(self) -> dict[str, Any]:
        """The series' record in summary.json (`series`)."""
        return {
            "model": self.spec,
            "name": model_display_name(series_name(self.spec)),
            "folder": slug(series_name(self.spec)),
            "found": self.found,
            "probed": [m.step for m in self.models],
            "duplicates": {str(step): of for step, of in self.duplicate_of.items()},
            "skipped": [s.as_dict() for s in self.skipped],
            "skipped_by_reason": dict(sorted(Counter(s.reason for s in self.skipped).items())),
        }

    def log_lines(self) -> list[str]:
        """What the run log says of the series: one line in all, then one per duplicate and per
        skipped checkpoint."""
        if not self.is_series:
            return []
        return (
            [series_line(self.as_dict())]
            + [
                f"{model_display_name(m.name)}: step {m.step} has the same weights as step {of}: a duplicate, "
                f"probed once (as step {of})"
                for m, of in self.duplicates
            ]
            + [f"skipped {s.text()}" for s in self.skipped]
        )


def series_line(record: dict[str, Any]) -> str:
    """One sentence on a series' checkpoints (from its summary.json record)."""
    duplicates = record.get("duplicates") or {}
    skipped = record.get("skipped_by_reason") or {}
    n_skipped = sum(skipped.values())
    return (
        f"series {record['name']}: {record['found']} checkpoints found, {len(record['probed'])} probed"
        + (f", {len(duplicates)} duplicate{'s' if len(duplicates) != 1 else ''}" if duplicates else "")
        + (f", {n_skipped} skipped (" + ", ".join(f"{k} {v}" for k, v in skipped.items()) + ")" if n_skipped else "")
    )


def series_state(spec: str, load: Callable[[str], Any] | None = None) -> SeriesState:
    """What `spec` stands for now: itself, or its finished checkpoints by step, with duplicates
    and skipped checkpoints told apart (see the module docstring).

    Args:
        load: called with each model's name to check that it loads (it raises ModelLoadError
            or InputError if not); None: not checked. For a single model its error propagates;
            a checkpoint that does not load is skipped. Of checkpoints with the same weights
            only the first that loads is loaded.

    Raises:
        ModelLoadError, InputError: a series that cannot be read (see `find_checkpoints`), one
            of which no checkpoint can be probed, or a single model that does not load.
    """
    if not is_checkpoint_series(spec):
        if load is not None:
            load(spec)
        return SeriesState(spec, (ProbedModel(spec, spec, slug(spec)),))
    series = find_checkpoints(spec)
    folder = slug(series_name(spec))
    skipped = [Skipped(name, reason) for name, reason in series.skipped]
    groups: dict[str, list[Checkpoint]] = {}
    for c in series.checkpoints:
        try:
            key = weights_fingerprint(c.path)
        except (ModelLoadError, OSError) as exc:
            skipped.append(Skipped(c.name, CANNOT_LOAD, c.step, _one_line(exc)))
            continue
        groups.setdefault(key, []).append(c)
    models: list[ProbedModel] = []
    duplicates: list[tuple[ProbedModel, int]] = []
    for group in groups.values():
        kept: Checkpoint | None = None
        for c in group:
            probed = ProbedModel(spec, c.name, f"{folder}/step-{c.step}", c.step)
            if kept is not None:
                duplicates.append((probed, kept.step))
                continue
            if load is not None:
                try:
                    load(c.name)
                except (ModelLoadError, InputError) as exc:
                    skipped.append(Skipped(c.name, CANNOT_LOAD, c.step, _one_line(exc)))
                    continue
            kept = c
            models.append(probed)
    state = SeriesState(
        spec,
        tuple(sorted(models, key=lambda m: m.step)),
        tuple(sorted(duplicates, key=lambda d: d[0].step)),
        tuple(skipped),
        found=len(series.checkpoints) + len(series.skipped),
        is_series=True,
    )
    if not state.models:
        raise InputError(
            f"no checkpoint of {spec!r} can be probed: "
            + "; ".join(s.text() for s in state.skipped[:3])
            + ("; ..." if len(state.skipped) > 3 else "")
        )
    return state


def _one_line(exc: BaseException) -> str:
    """The error's message on one line, without the loader's "cannot load 'NAME' from PATH: "
    (the checkpoint is named beside it)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return _LOADER_PREFIX.sub("", text, count=1)


def probed_models(spec: str) -> list[ProbedModel]:
    """The models `spec` stands for now: itself, or its distinct finished checkpoints by step
    (not checked for loading: `series_state` with `load` does that).

    Raises:
        ModelLoadError, InputError: a series that cannot be read (see `find_checkpoints`).
    """
    return list(series_state(spec).models)


def recorded_models(run: RunFolder, spec: str, state: SeriesState | None = None) -> list[ProbedModel]:
    """The models of `spec` that have outputs in `run`: for a series, every `step-<N>` folder,
    including checkpoints since deleted (Trainer's `save_total_limit` rotates them), by step;
    not the steps `state` (what the spec stands for now; None: found again, without loading)
    holds as duplicates or skipped."""
    if not is_checkpoint_series(spec):
        return [ProbedModel(spec, spec, slug(spec))]
    series = slug(series_name(spec))
    if state is None:
        try:
            state = series_state(spec)
        except (ModelLoadError, InputError):  # none left, or none finished: the recorded ones remain
            state = None
    current = {m.step: m for m in state.models} if state else {}
    left_out = (set(state.duplicate_of) | {s.step for s in state.skipped if s.step is not None}) if state else set()
    steps = set(current)
    for method in methods():
        for folder in run.model_folders(method.name, series):
            match = STEP_FOLDER.fullmatch(folder.name)
            if match:
                steps.add(int(match.group(1)))
    return [
        current.get(step) or ProbedModel(spec, "", f"{series}/step-{step}", step) for step in sorted(steps - left_out)
    ]

"""Training checkpoints as a series of models: find them, order them by training step, tell
finished ones from ones still being written. (A checkpoint is told from another, and from
itself replaced in place, by the fingerprint `load_model` records of every model:
`codeprobe.model.fingerprint`.)

A model spec names a checkpoint series when it is
- a directory without weights of its own holding `checkpoint-<step>` folders (Hugging Face
  Trainer's `output_dir`), or
- a glob (`runs/mlm/checkpoint-*`, `ckpts/step_*`), whose matches are the checkpoints (use this
  for a Trainer folder that also holds a final model of its own).

Each checkpoint is a model folder `codeprobe.model.load_model` loads by itself, offline:
config.json, the weights (safetensors preferred) and the tokenizer files beside them (Trainer
writes them when given `processing_class=tokenizer`). A checkpoint's training step is
`global_step` of its trainer_state.json, else the last integer in its folder's name.

Trainer writes trainer_state.json last, so a `checkpoint-<step>` folder without it is still
being written and is skipped (counted with its reason); another folder counts as finished once
its config, weights and tokenizer are there. Writers of other checkpoints should write to a
temporary folder and rename it into place.
"""

from __future__ import annotations

import glob
import json
import re
from dataclasses import dataclass
from pathlib import Path

from codeprobe.errors import InputError, ModelLoadError
from codeprobe.model.fingerprint import weight_files

TRAINER_PREFIX = "checkpoint-"
TRAINER_STATE = "trainer_state.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt", "spiece.model")
_GLOB_CHARS = re.compile(r"[*?\[]")
_TRAINER_NAME = re.compile(rf"{TRAINER_PREFIX}(\d+)")
_LAST_INT = re.compile(r"(\d+)(?!.*\d)")


@dataclass(frozen=True)
class Checkpoint:
    """One finished checkpoint of a series.

    Attributes:
        path: its model folder.
        step: the training step it was saved at (optimizer updates, as Trainer counts them).
    """

    path: Path
    step: int


@dataclass(frozen=True)
class CheckpointSeries:
    """The finished checkpoints a spec names, by increasing step.

    Attributes:
        spec: the model spec as given (a folder or a glob).
        name: a short name for the series (the folder's, or the glob's last fixed folder's).
        checkpoints: finished checkpoints, sorted by step (steps are unique).
        skipped: (folder, reason) of every matched folder not probed: "incomplete" (still being
            written) or "no model" (no config.json).
    """

    spec: str
    name: str
    checkpoints: tuple[Checkpoint, ...]
    skipped: tuple[tuple[str, str], ...]


def is_checkpoint_series(spec: str) -> bool:
    """Whether `spec` names a series: a glob, or a folder without config.json holding
    `checkpoint-<step>` folders."""
    if _GLOB_CHARS.search(spec):
        return True
    path = Path(spec).expanduser()
    return (
        path.is_dir()
        and not (path / "config.json").exists()
        and any(_TRAINER_NAME.fullmatch(p.name) and p.is_dir() for p in path.iterdir())
    )


def find_checkpoints(spec: str) -> CheckpointSeries:
    """The finished checkpoints `spec` names (see the module docstring), as they are now.

    Raises:
        ModelLoadError: the folder does not exist, or the glob matches nothing.
        InputError: no finished checkpoint yet; a checkpoint whose step cannot be told; two
            checkpoints with the same step.
    """
    if _GLOB_CHARS.search(spec):
        folders = [Path(p) for p in sorted(glob.glob(str(Path(spec).expanduser()))) if Path(p).is_dir()]
        if not folders:
            raise ModelLoadError(f"the checkpoint glob {spec!r} matches no folder")
    else:
        root = Path(spec).expanduser()
        if not root.is_dir():
            raise ModelLoadError(f"checkpoint folder {spec!r} does not exist")
        folders = sorted(p for p in root.iterdir() if p.is_dir() and _TRAINER_NAME.fullmatch(p.name))
    found: list[Checkpoint] = []
    skipped: list[tuple[str, str]] = []
    for folder in folders:
        reason = unfinished_reason(folder)
        if reason is not None:
            skipped.append((str(folder), reason))
            continue
        found.append(Checkpoint(folder, checkpoint_step(folder)))
    if not found:
        raise InputError(
            f"no finished checkpoint under {spec!r} yet"
            + (f" ({len(skipped)} skipped: {skipped[0][1]}, ...)" if skipped else "")
        )
    found.sort(key=lambda c: c.step)
    steps = [c.step for c in found]
    dupes = sorted({s for s in steps if steps.count(s) > 1})
    if dupes:
        raise InputError(
            f"{spec!r}: several checkpoints at step {dupes[0]}: "
            + ", ".join(str(c.path) for c in found if c.step == dupes[0])
        )
    return CheckpointSeries(spec, series_name(spec), tuple(found), tuple(skipped))


def series_name(spec: str) -> str:
    """A short name for a series: its folder's name, or a glob's last folder without wildcards."""
    parts = Path(spec).expanduser().parts
    if _GLOB_CHARS.search(spec):
        parts = parts[: next(i for i, part in enumerate(parts) if _GLOB_CHARS.search(part))]
        return Path(*parts).resolve().name if parts else "checkpoints"
    return Path(spec).expanduser().resolve().name


def unfinished_reason(folder: Path) -> str | None:
    """Why `folder` is not a finished checkpoint ("no model", "incomplete"), or None."""
    if _TRAINER_NAME.fullmatch(folder.name) and not (folder / TRAINER_STATE).is_file():
        return "incomplete" if any(folder.iterdir()) else "no model"
    if not (folder / "config.json").is_file():
        return "no model"
    try:
        weight_files(folder)
    except ModelLoadError:
        return "incomplete"
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        return "incomplete"
    return None


def checkpoint_step(folder: Path) -> int:
    """The training step of a checkpoint: trainer_state.json's `global_step`, else the last
    integer in the folder's name.

    Raises:
        InputError: neither says.
    """
    state = folder / TRAINER_STATE
    if state.is_file():
        try:
            return int(json.loads(state.read_text(encoding="utf-8"))["global_step"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{state} has no readable global_step") from exc
    match = _LAST_INT.search(folder.name)
    if match is None:
        raise InputError(f"cannot tell the training step of {folder}: no trainer_state.json and no number in its name")
    return int(match.group(1))

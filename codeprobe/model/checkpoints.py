"""Training checkpoints as a series of models: find them, order them by training step, tell
finished ones from ones still being written. (A checkpoint is told from another, and from
itself replaced in place, by the fingerprint `load_model` records of every model:
`codeprobe.model.fingerprint`.)

A model spec names a checkpoint series when it is
- a directory without weights of its own holding `checkpoint-<step>` folders (Hugging Face
  Trainer's `output_dir`), or
- a glob (`runs/mlm/checkpoint-*`, `ckpts/step_*`), whose matches are the checkpoints (use this
  for a Trainer folder that also holds a final model of its own), or
- a Hugging Face repository's revisions, `org/model@step1000,step2000,...` (Pythia, OLMo and
  LLM360 publish their checkpoints as branches), resolved offline from the local Hugging Face
  cache (`codeprobe.model.source.hub_snapshot`: the cache's refs/<revision> names the commit
  whose snapshot holds the files). A revision's step is the number after "step" in its name
  (`step1000`, `stage1-step1000-tokens4B`: 1000), else the last number in it (`ckpt_042`: 42);
  a revision without a number, or one not in the cache, is skipped with its reason. Naming a
  revision twice names it once.

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
HUB_REVISION_SEP = "@"
TRAINER_STATE = "trainer_state.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt", "spiece.model")
_GLOB_CHARS = re.compile(r"[*?\[]")
_TRAINER_NAME = re.compile(rf"{TRAINER_PREFIX}(\d+)")
_LAST_INT = re.compile(r"(\d+)(?!.*\d)")
_STEP_INT = re.compile(r"step[-_]?(\d+)", re.IGNORECASE)
_HUB_REVISIONS = re.compile(r"(?P<repo>[A-Za-z0-9][\w.-]*(?:/[A-Za-z0-9][\w.-]*)?)@(?P<revisions>[^@]+)")


@dataclass(frozen=True)
class Checkpoint:
    """One finished checkpoint of a series.

    Attributes:
        path: its model folder (for a hub revision, the cached snapshot it points at).
        step: the training step it was saved at (optimizer updates, as Trainer counts them).
        model: what `load_model` is given to load it: the folder, or `org/model@revision`
            (empty: the folder).
    """

    path: Path
    step: int
    model: str = ""

    @property
    def name(self) -> str:
        """What `load_model` is given to load it."""
        return self.model or str(self.path)


@dataclass(frozen=True)
class CheckpointSeries:
    """The finished checkpoints a spec names, by increasing step.

    Attributes:
        spec: the model spec as given (a folder, a glob, or `org/model@revisions`).
        name: a short name for the series (the folder's, the glob's last fixed folder's, the
            repository's id).
        checkpoints: finished checkpoints, sorted by step (steps are unique).
        skipped: (folder or `org/model@revision`, reason) of every matched folder or named
            revision not probed: "incomplete" (still being written, or a snapshot without its
            weights or tokenizer), "no model" (no config.json), "not in the local Hugging Face
            cache", "no step in its name".
    """

    spec: str
    name: str
    checkpoints: tuple[Checkpoint, ...]
    skipped: tuple[tuple[str, str], ...]


def is_checkpoint_series(spec: str) -> bool:
    """Whether `spec` names a series: a glob, a folder without config.json holding
    `checkpoint-<step>` folders, or a hub repository's revisions (`org/model@rev,...`)."""
    if _GLOB_CHARS.search(spec) or hub_revisions(spec) is not None:
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
    hub = hub_revisions(spec)
    if hub is not None:
        return _hub_series(spec, *hub)
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
    return _series(spec, found, skipped)


def _series(spec: str, found: list[Checkpoint], skipped: list[tuple[str, str]]) -> CheckpointSeries:
    found.sort(key=lambda c: c.step)
    steps = [c.step for c in found]
    dupes = sorted({s for s in steps if steps.count(s) > 1})
    if dupes:
        raise InputError(
            f"{spec!r}: several checkpoints at step {dupes[0]}: "
            + ", ".join(c.name for c in found if c.step == dupes[0])
        )
    return CheckpointSeries(spec, series_name(spec), tuple(found), tuple(skipped))


def hub_revisions(spec: str) -> tuple[str, tuple[str, ...]] | None:
    """(repository id, revisions) of a spec `org/model@rev1,rev2,...` that names no existing
    path; None for any other spec. Revisions keep their order; one named twice counts once."""
    match = _HUB_REVISIONS.fullmatch(spec.strip())
    if match is None or Path(spec).expanduser().exists():
        return None
    revisions = tuple(dict.fromkeys(r.strip() for r in match["revisions"].split(",") if r.strip()))
    return (match["repo"], revisions) if revisions else None


def revision_step(revision: str) -> int | None:
    """A hub revision's training step: the number after "step" in its name, else the last number
    in it; None without a number."""
    match = _STEP_INT.search(revision) or _LAST_INT.search(revision)
    return int(match.group(1)) if match else None


def _hub_series(spec: str, repo: str, revisions: tuple[str, ...]) -> CheckpointSeries:
    """The revisions of `repo` found in the local Hugging Face cache (see the module docstring)."""
    from codeprobe.model.source import hub_snapshot

    found: list[Checkpoint] = []
    skipped: list[tuple[str, str]] = []
    for revision in revisions:
        name = f"{repo}{HUB_REVISION_SEP}{revision}"
        step = revision_step(revision)
        if step is None:
            skipped.append((name, "no step in its name"))
            continue
        try:
            snapshot = hub_snapshot(repo, revision)
        except ModelLoadError:
            skipped.append((name, "not in the local Hugging Face cache"))
            continue
        reason = unfinished_reason(snapshot)
        if reason is not None:
            skipped.append((name, reason))
            continue
        found.append(Checkpoint(snapshot, step, name))
    if not found:
        raise InputError(
            f"no revision of {repo!r} named in {spec!r} can be probed"
            + "".join(f"; {name}: {reason}" for name, reason in skipped[:3])
            + ("; ..." if len(skipped) > 3 else "")
        )
    return _series(spec, found, skipped)


def series_name(spec: str) -> str:
    """A short name for a series: its folder's name, a glob's last folder without wildcards, or
    a hub series' repository id."""
    hub = hub_revisions(spec)
    if hub is not None:
        return hub[0]
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

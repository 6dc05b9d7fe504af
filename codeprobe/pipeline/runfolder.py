"""The run folder: the one place that makes a path under `RUN/`, reads and writes its files, and
knows whether a step is done.

    RUN/config.json   RUN/summary.json   RUN/report.md   RUN/report.html   RUN/plots/
    RUN/data/<language>-<dataset>/                    snippets.jsonl, report.json, splits.json
    RUN/<method>/<model>/<language>-<dataset>/        a method's outputs (`RunFolder.results`):
        cat/...        shard-NNNN.npz (`ResultFolder.shard`), heads-NNNN.npz,
                       shard-NNNN.hidden_states/, samples.parquet, layers.parquet,
                       rates.parquet, summary.json
        astprobe/...   hidden_states.json, random.json, ranks.json,
                       probes/hidden_state_HH_rank_RRR/
    RUN/explorer/<model>/<language>-<dataset>.json    the snippet explorer's sample
    RUN/cache/hidden_states/                          AST-Probe's per-hidden-state fp16 caches

`<model>` is the model's folder name (`codeprobe.pipeline.series.ProbedModel.folder`: a slug of
the model spec, or `<series>/step-<N>` for a checkpoint), `<dataset>` a slug of the dataset spec.

Every file is written atomically (`codeprobe.files`). A step's output records the step's key
(`KEY_FIELD`, inside the .json or .npz itself, so the output and its key land in one rename); a
step is done when its output records the key it would be run with and it, and every other file
the step wrote that a later step reads back, is as written: its size and checksum match the
record `codeprobe.files` made when writing it (`is_done`). A damaged file is logged as a WARNING
naming it and its step computed again; a file without a record (an older codeprobe's) is simply
not done.

One process computes a step; another asking for it at the same time waits for it
(`step_output`: check done, take the output's file lock `.<name>.lock`, check done again,
compute). The lock is an flock, released by the kernel when its holder dies, so a killed
holder's lock is never stale.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from codeprobe.files import check, read_json, write_json
from codeprobe.interrupt import check_interrupted

log = logging.getLogger("codeprobe.pipeline")

KEY_FIELD = "_key"  # the step key recorded inside each output (see `is_done`)


def slug(text: str) -> str:
    """A file-name-safe key for a model or dataset spec ("stdlib", "cosqa-dev", ...)."""
    name = Path(text).name if ("/" in text or "\\" in text) else text
    name = re.sub(r"\.(jsonl\.gz|jsonl|json|txt|tsv)$", "", name)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "x"


def data_key(language: str, dataset: str) -> str:
    """The `<language>-<dataset>` folder name of one dataset read in one language."""
    return f"{language}-{slug(dataset)}"


def model_display_name(name: str) -> str:
    """A model's name as every report shows it: a local folder by its last part (its full path
    is in the run's config), a hub id or "default" as it is."""
    path = Path(name)
    return path.name if path.is_absolute() or name.startswith(".") else name


def recorded_key(path: str | Path) -> str | None:
    """The step key a finished output records (`KEY_FIELD` inside its .json or .npz); None if
    absent or unreadable."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return str(z[KEY_FIELD]) if KEY_FIELD in z.files else None
        value = read_json(path)
        return value.get(KEY_FIELD) if isinstance(value, dict) else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None


def is_done(path: str | Path, key: str, also: Iterable[str | Path] = ()) -> bool:
    """A finished output recording `key` is the record that a step is done, whatever state an
    orchestrator's own result record was left in (a kill -9 can land between the two), if it and
    the files of `also` (the others the step wrote that are read back) are as written
    (`codeprobe.files.check`: a damaged one is logged as a WARNING naming it, and is not done)."""
    if recorded_key(path) != key:
        return False
    return all([check(p) == "ok" for p in (path, *also)])  # every file checked: each damaged one is named


def write_step_json(path: str | Path, obj: dict[str, Any], key: str) -> str:
    """Write a step's JSON output recording its `key`, atomically, with its integrity record;
    returns the path."""
    return str(write_json(path, {**obj, KEY_FIELD: key}, record=True))


def lock_path(path: str | Path) -> Path:
    """The file lock of the step writing `path`: `.<name>.lock` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextmanager
def computing(path: str | Path, key: str, also: Callable[[], Iterable[str | Path]] = tuple) -> Iterator[bool]:
    """One process computes the step writing `path` (recording `key`); another waits for it.

    Yields True when the step is done (`is_done(path, key, also())`), at once or after waiting
    for the process computing it; else False, holding the step's lock (`lock_path`, an flock the
    kernel releases when its holder dies) until the block ends, while the caller computes it.
    """
    path = Path(path)
    if is_done(path, key, also()):
        yield True
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("waiting for another process computing %s", path)
        while True:
            check_interrupted()  # Ctrl-C / SIGTERM: an interrupted run stops waiting too
            try:
                lock.acquire(timeout=0.5)
                break
            except Timeout:
                pass
    try:
        done = is_done(path, key, also())  # the other process may have computed it meanwhile
        if not done:
            log.info("computing %s", path)
        yield done
    finally:
        lock.release()


@dataclass(frozen=True)
class StepOutput:
    """What a step function writes: `file` records `key`; `also` lists the other files it wrote
    that are read back (checked if present: a function, called when checking); `returns` is
    what the step returns when done (default: `file`)."""

    file: str | Path
    key: str
    also: Callable[[], Iterable[str | Path]] = field(default=tuple)
    returns: str | None = None


def step_output(output: Callable[[dict[str, Any]], StepOutput]):
    """Decorate a step function so that it is computed once (`computing`): `output` maps its
    arguments by name to its `StepOutput`. When done, the step returns at once (or after waiting
    for the process computing it) without running."""

    def decorate(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def step(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            out = output(bound.arguments)
            with computing(out.file, out.key, out.also) as done:
                if done:
                    return str(out.returns if out.returns is not None else out.file)
                return fn(*args, **kwargs)

        return step

    return decorate


@dataclass(frozen=True)
class ResultFolder:
    """`RUN/<method>/<model>/<language>-<dataset>/`: one method's outputs for one model and
    dataset."""

    path: Path

    def file(self, name: str) -> Path:
        """A file of this folder by its name (`summary.json`, `hidden_states.json`, ...)."""
        return self.path / name

    def shard(self, index: int, prefix: str = "shard", suffix: str = ".npz") -> Path:
        """The file of shard `index` (0-based): `shard-0003.npz`; `prefix` names what a shard
        writes beside it (`heads-0003.npz`)."""
        return self.path / f"{prefix}-{index:04d}{suffix}"

    def shards(self, prefix: str = "shard", suffix: str = ".npz") -> list[Path]:
        """The shard files of this folder now, in order."""
        return sorted(self.path.glob(f"{prefix}-[0-9][0-9][0-9][0-9]{suffix}"))

    def probe(self, hidden_state: int, rank: int) -> Path:
        """The folder of AST-Probe's saved probe at (`hidden_state`, `rank`)."""
        from codeprobe.probes.astprobe.sweeps import probe_folder_name

        return self.path / "probes" / probe_folder_name(hidden_state, rank)


@dataclass(frozen=True)
class RunFolder:
    """A run folder `RUN/`: the paths of its files (see the module doc) and reading them.

    Attributes:
        root: the folder, absolute.
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def hidden_state_cache(self) -> Path:
        """AST-Probe's per-hidden-state caches (memory-mapped fp16), shared by all models."""
        return self.root / "cache" / "hidden_states"

    def data(self, language: str, dataset: str) -> Path:
        """`RUN/data/<language>-<dataset>/`: the snippets, their skips and their splits."""
        return self.root / "data" / data_key(language, dataset)

    def results(self, method: str, model_folder: str, language: str, dataset: str) -> ResultFolder:
        """`RUN/<method>/<model>/<language>-<dataset>/`: a method's outputs."""
        return ResultFolder(self.root / method / model_folder / data_key(language, dataset))

    def model_folders(self, method: str, series: str) -> list[Path]:
        """The `step-<N>` folders a checkpoint series has under `RUN/<method>/<series>/`."""
        return [p for p in (self.root / method / series).glob("step-*") if p.is_dir()]

    def explorer(self, model_folder: str, language: str, dataset: str) -> Path:
        """`RUN/explorer/<model>/<language>-<dataset>.json`: the snippet explorer's sample."""
        return self.root / "explorer" / model_folder / f"{data_key(language, dataset)}.json"

    def read_summary(self) -> dict[str, Any]:
        """`summary.json` of a finished run.

        Raises:
            FileNotFoundError: the folder holds no finished run.
        """
        if not self.summary.exists():
            raise FileNotFoundError(f"{self.root} is not a finished codeprobe run (no summary.json)")
        return read_json(self.summary)

"""Dropping what only a finished run's steps needed: `codeprobe clean RUN`.

A finished run keeps, beside its results and reports, what its steps made for later steps:
each method's intermediates (`Method.intermediates`: CAT-probing's shards, their per-head rows
and hidden-state stores) and AST-Probe's hidden-state caches (`RUN/cache/`, one per model and
split, including those of model files replaced since). Nothing that reads a finished run needs
them: the reports read the results, and a rerun of the same config finds every last step done
and skips the steps before it. A rerun with changed settings recomputes what it needs (the
forward pass included, which the caches would have spared).

Kept: config.json, summary.json, the reports and plots, the prepared data, each method's
results (CAT's parquet tables and summary, AST-Probe's sweeps and saved probes) and the
explorer's samples.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from codeprobe.errors import InputError
from codeprobe.files import record_path
from codeprobe.pipeline.registry import methods
from codeprobe.pipeline.runfolder import ResultFolder, RunFolder, lock_path


@dataclass(frozen=True)
class Cleaning:
    """What `clean_run` removes (or would remove, with `dry_run`).

    Attributes:
        paths: the files and folders, in the order found.
        n_bytes: their size in bytes (folders: every file inside).
    """

    paths: tuple[Path, ...]
    n_bytes: int


def size_of(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (0 if it is gone)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def intermediate_paths(run: RunFolder) -> list[Path]:
    """What a finished run's steps made only for later steps (see the module doc)."""
    found = []
    for m in methods():
        for summary in sorted((run.root / m.name).rglob("summary.json")):
            for path in m.intermediates(ResultFolder(summary.parent)):
                # with its integrity record and its step lock, where it has them
                found += [p for p in (path, record_path(path), lock_path(path)) if p.exists()]
    cache = run.hidden_state_cache.parent
    return found + ([cache] if cache.exists() else [])


def clean_run(root: str | Path, dry_run: bool = False) -> Cleaning:
    """Remove a finished run's intermediates (`intermediate_paths`).

    Args:
        root: the run folder.
        dry_run: only say what would be removed.

    Raises:
        InputError: `root` holds no finished run (no summary.json): its intermediates are what
            a rerun resumes from.
    """
    run = RunFolder(Path(root))
    if not run.summary.exists():
        raise InputError(
            f"{run.root} holds no finished codeprobe run (no summary.json): finish it first, by running "
            "the same command again, or remove the folder"
        )
    paths = intermediate_paths(run)
    n_bytes = sum(size_of(p) for p in paths)
    if not dry_run:
        for p in paths:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
    return Cleaning(tuple(paths), n_bytes)

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
step is done when its output records the key it would be run with (`is_done`).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codeprobe.files import read_json, write_json

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


def is_done(path: str | Path, key: str) -> bool:
    """A finished output recording `key` is the record that a step is done, whatever state an
    orchestrator's own result record was left in (a kill -9 can land between the two)."""
    return recorded_key(path) == key


def write_step_json(path: str | Path, obj: dict[str, Any], key: str) -> str:
    """Write a step's JSON output recording its `key`, atomically; returns the path."""
    return str(write_json(path, {**obj, KEY_FIELD: key}))


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

"""The probing methods a run knows: each is one package under `codeprobe/probes/` plus one
registration (a package of `codeprobe.pipeline.methods` whose `METHOD` is a `Method`).

A `Method` tells the runner what it needs from the forward pass, how to run its steps for one
(model, language, dataset), what its section of `summary.json` is, and how the reports show it.
The runner (`codeprobe.pipeline.experiment`), the summary and the reports iterate `methods()`
and never name a method; adding one is a new probe package, a new package in
`codeprobe/pipeline/methods/` and its line in `_MODULES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from codeprobe.onsets import SnippetScores
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.runfolder import ResultFolder, RunFolder
from codeprobe.pipeline.steps import Steps

# Registered methods, in the order they run (a method may reuse what an earlier one's forward
# pass stored: `Target.shared`).
_MODULES = (
    "codeprobe.pipeline.methods.cat",
    "codeprobe.pipeline.methods.astprobe",
    "codeprobe.pipeline.methods.heads",
    "codeprobe.pipeline.methods.structural",
    "codeprobe.pipeline.methods.diagnostic",
)


@dataclass
class Target:
    """One (model, language, dataset) a method runs on, and what the run knows of it.

    Attributes:
        model: the name the steps load the model by.
        model_id: the model's provenance (name, fingerprint, checkpoint step): enters every key.
        n_hidden_states: the model's layers + 1 (the embeddings).
        language, dataset: what is probed.
        data_dir: the prepared snippets' folder; data_key: its step key; n_snippets: how many.
        results: the method's output folder (`results_of` gives another method's).
        run: the run folder; model_folder: the model's folder name in it.
        shared: what earlier methods' forward passes stored for later ones, by kind (e.g.
            "hidden_states": {shard key: store path}); a method adds to it in `run`.
    """

    model: str
    model_id: dict[str, Any]
    n_hidden_states: int
    language: str
    dataset: str
    data_dir: str
    data_key: str
    n_snippets: int
    results: ResultFolder
    run: RunFolder
    model_folder: str
    shared: dict[str, dict[str, str]] = field(default_factory=dict)

    def n_shards(self, shard_size: int) -> int:
        """How many shards of `shard_size` snippets the data makes (at least one): shard k holds
        snippets [k * shard_size, (k + 1) * shard_size), for every method that shards."""
        return max(1, -(-self.n_snippets // shard_size))

    def results_of(self, method: str) -> ResultFolder:
        """Method `method`'s output folder for this model and dataset (what a later method's
        share of this one's forward pass writes to)."""
        return self.run.results(method, self.model_folder, self.language, self.dataset)


@dataclass(frozen=True)
class SeriesCurve:
    """How the report shows a method over a checkpoint series: a step x row heat map of its
    score (a row is a transformer layer for CAT-probing, a hidden state for AST-Probe), and its
    best row's score over the steps with baselines, and a table.

    Attributes:
        title: the score's name ("CAT-score"); index_name: what a row is ("layer", "hidden
            state"); index_axis: the axis label of a row's index.
        rows: a result's section -> its rows; index, score: their keys in a row.
        best: a section -> the row followed over training (None: none).
        values: (section, best row) -> the values the curves and the table read.
        curves: (legend, key, ci key, line style, marker) per curve; the first is the score.
        table_header: the Markdown table's two header lines; table_row: (step, best, values)
            -> one line.
        curve_title: the curve panel's title, for a curve that follows no single row (None: the
            best row's, each point labelled by its index).
    """

    title: str
    index_name: str
    index_axis: str
    rows: Callable[[dict[str, Any]], list[dict[str, Any]]]
    index: str
    score: str
    best: Callable[[dict[str, Any]], dict[str, Any] | None]
    values: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
    curves: tuple[tuple[str, str, str, str, str | None], ...]
    table_header: tuple[str, str]
    table_row: Callable[[int, dict[str, Any] | None, dict[str, Any]], str]
    curve_title: str | None = None


@dataclass(frozen=True)
class AttentionShare:
    """What a method reads from an attention method's forward pass, shard by shard: the pass
    hands every snippet's per-head token attention to the method's reader and writes the
    reader's file for each shard (before its own, so a finished shard implies them).

    Attributes:
        method: the reading method's name (`Method.read_attention` makes its reader).
        settings: JSON values that shape the reader's files: enter the pass's step keys, and
            tell the task how to make the reader.
        paths, keys: per shard, the file the reader's state goes to and the step key it records
            (the reading method's own key of that shard: the same file its own pass would write).
    """

    method: str
    settings: dict[str, Any]
    paths: tuple[str, ...]
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Method:
    """A probing method as the runner, the summary and the reports see it.

    Attributes:
        name: its key: `RUN/<name>/...`, its section of a result in summary.json, and the config
            section that turns it on (`RunConfig.<name>`, None = off).
        title: how reports name it ("CAT-probing").
        needs: the forward-pass outputs it reads ("attention", "hidden_states").
        run: (config, steps, target, log): submit its steps for one target and wait for them.
        summarize: (its result folder, config) -> its summary.json section (None: no result).
        report: ((label, section) pairs, plots folder) -> its Markdown section, plots written.
        series: its curve over a checkpoint series (None: not shown over training).
        model_info: its result folder -> the model's info its outputs recorded (or None).
        shared_pass: config -> the token settings with which an earlier method's forward pass
            may pool this method's hidden states (None: it runs its own pass).
        html_view: (result folder, section) -> the section as the HTML report shows it (extra
            views read from its files; default: the section as it is).
        intermediates: its result folder -> the files and folders there that only its own
            finished steps needed (removable by `codeprobe clean` once its result is written:
            nothing after the method's last step reads them, and its run skips them when that
            step is done); default: none.
        attention_share: (config, target, shard size) -> what this method reads from an
            earlier method's forward pass over the same shards (None: nothing, or it cannot be
            shared with that pass's settings; the method then runs its own pass).
        read_attention: (its `AttentionShare.settings`, language) -> a reader with
            `first_pass(snippet inputs or skipped sample)` (worker threads), `add(first pass)`
            (in the data's order) and `save(path, key)`.
        per_snippet: (result folder, section) -> each snippet's score per row of its `series`
            curve (the values a row's score averages; for a ratio of sums, each snippet's own
            ratio), or None where the folder does not record them: what a series' onsets
            (`codeprobe.onsets`) rest on. None: the method has no onsets.
    """

    name: str
    title: str
    needs: frozenset[str]
    run: Callable[[RunConfig, Steps, Target, Any], None]
    summarize: Callable[[ResultFolder, RunConfig], dict[str, Any] | None]
    report: Callable[[list[tuple[str, dict[str, Any]]], Path], list[str]]
    series: SeriesCurve | None = None
    model_info: Callable[[ResultFolder], dict[str, Any] | None] = lambda folder: None
    shared_pass: Callable[[RunConfig], dict[str, Any] | None] = lambda cfg: None
    html_view: Callable[[ResultFolder, dict[str, Any]], dict[str, Any]] = lambda folder, section: dict(section)
    intermediates: Callable[[ResultFolder], list[Path]] = lambda folder: []
    attention_share: Callable[[RunConfig, Target, int], AttentionShare | None] = lambda cfg, target, size: None
    read_attention: Callable[[dict[str, Any], str], Any] | None = None
    per_snippet: Callable[[ResultFolder, dict[str, Any]], SnippetScores | None] | None = None

    def enabled(self, cfg: RunConfig) -> bool:
        return getattr(cfg, self.name, None) is not None


@lru_cache(maxsize=1)
def methods() -> tuple[Method, ...]:
    """Every registered method, in running order."""
    return tuple(importlib.import_module(name).METHOD for name in _MODULES)


def method(name: str) -> Method:
    """The registered method `name`.

    Raises:
        KeyError: no such method.
    """
    for m in methods():
        if m.name == name:
            return m
    raise KeyError(f"no probing method {name!r}; registered: {', '.join(m.name for m in methods())}")

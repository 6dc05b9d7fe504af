"""The experiment runner: one RunConfig, one run folder, every registered method. It serves the
library, the CLI (`codeprobe astprobe train`, `codeprobe run`) and the Prefect flow alike; only
how a step is executed differs (`codeprobe.pipeline.steps.Steps`): directly in this process, or
as a Prefect task.

Every step writes its output atomically and records in it a key (`codeprobe.provenance`) over
everything that shapes it; a step whose output already records its key is not redone. So a
rerun recomputes nothing, a run killed half way resumes from its finished outputs, and a change
of code, data, model files or library versions recomputes what it touches.

The runner never names a method: it prepares each dataset, then runs each enabled method of
`codeprobe.pipeline.registry` on each (model, language, dataset), then writes the summary, the
explorer's samples and the reports. Model selection is each method's, on the validation split.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeprobe.errors import InputError
from codeprobe.files import remove_stale_temporaries
from codeprobe.pipeline.config import RunConfig, parse_config
from codeprobe.pipeline.data import count_snippets, prepare_data
from codeprobe.pipeline.explorer import explorer_jobs, explorer_sample
from codeprobe.pipeline.registry import Target, methods
from codeprobe.pipeline.report import render_report, write_report_html
from codeprobe.pipeline.runfolder import RunFolder
from codeprobe.pipeline.series import SeriesState, series_state
from codeprobe.pipeline.steps import LocalSteps, Steps, loaded_model
from codeprobe.pipeline.summary import summarize_run
from codeprobe.provenance import dataset_fingerprint, environment, step_key


def preflight(cfg: RunConfig) -> dict[str, Any]:
    """Fail at once, before any work and before the run folder is claimed, on a model that
    cannot load, a dataset that cannot be read, an unknown language or a bad setting. Returns
    the provenance of each model to probe (for a checkpoint series, its distinct finished
    checkpoints that load, as found now: `codeprobe.pipeline.series`), by the name the steps
    load it by."""
    return plan(cfg)[0]


@dataclass(frozen=True)
class DataPlan:
    """Which (language, dataset) pairs of a config are read: a dataset is read in each language
    it has a usable snippet in (`codeprobe.datasets.check_usable`), so one run can hold a Python
    dataset and a JavaScript one.

    Attributes:
        pairs: (language, dataset) pairs to run, in the config's order.
        skipped: (language, dataset, reason) of the pairs left out.
    """

    pairs: tuple[tuple[str, str], ...]
    skipped: tuple[tuple[str, str, str], ...] = ()

    def as_records(self) -> list[dict[str, str]]:
        """The skipped pairs for summary.json."""
        return [{"language": lang, "dataset": d, "reason": reason} for lang, d, reason in self.skipped]


def data_plan(cfg: RunConfig) -> DataPlan:
    """The (language, dataset) pairs of `cfg` to run (see `DataPlan`).

    Raises:
        DatasetError: a dataset usable in none of the languages (unreadable, or no usable
            snippet in any: the message of each language), or a language no dataset has.
    """
    from codeprobe.datasets import check_usable
    from codeprobe.errors import DatasetError

    pairs, skipped = [], []
    for dataset in cfg.datasets:
        errors = []
        for language in cfg.languages:
            try:
                check_usable(dataset, language)  # readable, with a snippet the data step keeps
                pairs.append((language, dataset))
            except DatasetError as e:
                errors.append(e)
                skipped.append((language, dataset, str(e)))
        if len(errors) == len(cfg.languages):
            raise errors[0] if len(errors) == 1 else DatasetError("; ".join(map(str, errors)))
    for language in cfg.languages:
        if all(lang != language for lang, _ in pairs):
            raise DatasetError(
                f"no dataset has a usable {language} snippet: "
                + "; ".join(reason for lang, _, reason in skipped if lang == language)
            )
    order = {(lang, d): (cfg.languages.index(lang), cfg.datasets.index(d)) for lang, d in pairs}
    return DataPlan(tuple(sorted(pairs, key=order.__getitem__)), tuple(skipped))


def plan(cfg: RunConfig) -> tuple[dict[str, Any], list[SeriesState], DataPlan]:
    """`preflight`, what each model spec stands for now (`series_state`: a checkpoint series'
    checkpoints to probe, its duplicates and the checkpoints skipped, with their reasons), and
    the (language, dataset) pairs to read (`data_plan`)."""
    from codeprobe.probes.cat.types import check_strategy
    from codeprobe.syntax.languages import canonical_language

    if not any(m.enabled(cfg) for m in methods()):
        raise InputError("the config runs no method: enable at least one of " + ", ".join(m.name for m in methods()))
    for language in cfg.languages:
        canonical_language(language)
        if cfg.cat is not None and cfg.cat.types != "auto":
            check_strategy(cfg.cat.types, language)
    reading = data_plan(cfg)
    infos: dict[str, Any] = {}

    def load(name: str) -> None:
        infos[name] = loaded_model(name, cfg.extraction.device, cfg.extraction.dtype, **cfg.extraction.placement()).info

    states = [series_state(spec, load) for spec in cfg.models]
    for info in infos.values():
        bad = [h for h in (cfg.astprobe.hidden_states if cfg.astprobe else ()) if not 0 <= h <= info.n_layers]
        if bad:
            raise InputError(f"hidden states {bad} do not exist: {info.name} has hidden states 0..{info.n_layers}")
    return infos, states, reading


def check_run_folder(run: RunFolder, cfg: RunConfig) -> None:
    """Raise unless `run` is free for this experiment or already holds it (a rerun resumes it);
    writes nothing.

    Raises:
        InputError: the folder holds a run with another config, or is not a folder.
    """
    if run.root.exists() and not run.root.is_dir():
        raise InputError(f"{run.root} is a file, not a run folder; choose another output folder")
    if run.config.exists() and RunConfig.read(run.config) != cfg:
        raise InputError(f"{run.root} holds a run with a different config; choose another output folder")


def claim_run_folder(run: RunFolder, cfg: RunConfig) -> None:
    """Write RUN/config.json, or check that the folder already holds this same experiment: a run
    folder is one experiment, so reruns resume it and a different config needs a new folder."""
    from codeprobe.files import write_atomic

    check_run_folder(run, cfg)
    if not run.config.exists():
        write_atomic(run.config, cfg.to_json())


def check_run(cfg: RunConfig, out_dir: str | Path) -> dict[str, Any]:
    """Everything about a run that can be checked without a forward pass, touching nothing:
    `preflight` (the config, the models, the datasets, the languages) and the run folder
    (`check_run_folder`). Entry points call it before they start a Prefect server, so a mistake
    is one line within seconds; returns `preflight`'s model provenance. `out_dir`'s strftime
    fields are filled in, as the flow does."""
    infos = preflight(cfg)
    check_run_folder(RunFolder(Path(time.strftime(str(out_dir)))), cfg)
    return infos


def run_experiment(
    cfg: RunConfig,
    out_dir: str | Path,
    steps: Steps | None = None,
    log: logging.Logger | logging.LoggerAdapter | None = None,
) -> Path:
    """Run every (model, language, dataset) of `cfg` into `out_dir` with every enabled method;
    write summary.json, report.md and report.html. Returns the Markdown report's path.

    Raises:
        ConfigError, ModelLoadError, DatasetError, InputError: before any work, on a config,
            model or dataset that cannot be used, or a run folder that holds another experiment.
    """
    log = log or logging.getLogger("codeprobe.pipeline")
    steps = steps or LocalSteps()
    run = RunFolder(Path(out_dir))
    started = time.perf_counter()
    infos, states, reading = plan(cfg)
    claim_run_folder(run, cfg)
    for language, dataset, reason in reading.skipped:
        log.info("%s is not read in %s: %s", dataset, language, reason)
    for state in states:  # each series: what it holds, its duplicates and skipped checkpoints
        for i, line in enumerate(state.log_lines()):
            (log.warning if i or state.duplicates or state.skipped else log.info)("%s", line)
    remove_stale_temporaries(run.root)  # a killed run's temporary files and folders (`codeprobe.files`)
    stage_seconds: dict[str, float] = {}
    guard = threading.Lock()

    def add_time(stage: str, t0: float) -> None:
        with guard:
            stage_seconds[stage] = round(stage_seconds.get(stage, 0.0) + time.perf_counter() - t0, 1)

    data: dict[tuple[str, str], tuple[str, str, int]] = {}
    for language, dataset in reading.pairs:
        t0 = time.perf_counter()
        data_key = step_key(
            "prepare-data",
            {
                "dataset": dataset,
                "content": dataset_fingerprint(dataset, language),
                "language": language,
                "n_snippets": cfg.data.n_snippets,
                "seed": cfg.seed,
            },
        )
        data_dir = steps.submit(
            "prepare-data",
            prepare_data,
            dataset,
            language,
            cfg.data.n_snippets,
            cfg.seed,
            str(run.data(language, dataset)),
            data_key,
        ).result()
        add_time("data", t0)
        data[language, dataset] = (data_dir, data_key, count_snippets(data_dir))

    enabled = [m for m in methods() if m.enabled(cfg)]

    def probe(probed, language: str, dataset: str) -> None:
        """Every enabled method on one (model, language, dataset), in order (a later method may
        read what an earlier one's forward pass stored: `Target.shared`)."""
        info = infos[probed.name]
        data_dir, data_key, n = data[language, dataset]
        log.info("%s / %s / %s: %d snippets", probed.name, language, dataset, n)
        shared: dict[str, dict[str, str]] = {}
        for m in enabled:
            target = Target(
                model=probed.name,
                model_id={"name": probed.name, **info.as_dict(), **probed.key_fields()},
                n_hidden_states=info.n_layers + 1,
                language=language,
                dataset=dataset,
                data_dir=data_dir,
                data_key=data_key,
                n_snippets=n,
                results=run.results(m.name, probed.folder, language, dataset),
                run=run,
                model_folder=probed.folder,
                shared=shared,
            )
            t0 = time.perf_counter()
            m.run(cfg, steps, target, log)
            add_time(m.title, t0)
            log.info("%s %s / %s / %s: %.1f s", m.title, probed.name, language, dataset, time.perf_counter() - t0)

    targets = [(probed, lang, d) for state in states for probed in state.models for lang, d in reading.pairs]
    run_all(probe, targets, at_once=getattr(steps, "targets_at_once", 1))

    summary = summarize_run(
        run,
        seconds=time.perf_counter() - started,
        versions=environment(),
        stages=stage_seconds,
        series=states,
        not_read=reading.as_records(),
        execution={"task_runner": steps.runner, "steps": steps.placements()},
    )
    for job in explorer_jobs(run, cfg, summary):  # the HTML report's snippet explorer
        t0 = time.perf_counter()
        steps.submit("explorer-sample", explorer_sample, job, cfg, str(run.hidden_state_cache), job.key(cfg)).result()
        log.info("explorer sample %s: %.1f s", job.out_path, time.perf_counter() - t0)
    report = render_report([run.root], run.report_md)
    write_report_html([run.root], run.report_html)
    log.info("report: %s", report)
    return report


def run_all(fn, targets: list[tuple[Any, ...]], at_once: int) -> None:
    """`fn(*target)` for every target, `at_once` of them at a time: independent (model,
    language, dataset) targets run side by side when their steps can spread over several
    workers (`codeprobe.pipeline.runners`), so one target's sequential stages (the reduce, the
    selection on validation) do not leave the other workers idle. Each thread runs in a copy of
    this thread's context (the Prefect flow run's, which submitting a task needs). The first
    error is raised once the targets already started have ended."""
    if at_once <= 1 or len(targets) <= 1:
        for target in targets:
            fn(*target)
        return
    with ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="codeprobe-target") as pool:
        futures = [pool.submit(contextvars.copy_context().run, fn, *target) for target in targets]
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()  # those not started; the running ones end with their steps
            raise


def run(config: RunConfig | dict | None = None, out_dir: str | Path = "runs/main") -> Path:
    """Library entry point: run an experiment in this process (no Prefect server needed).

    Args:
        config: a RunConfig, or a dict as in config.json (validated; None: the main job's).
    """
    return run_experiment(parse_config(config), out_dir)

"""The probing flow: `run_experiment` with each step run as a Prefect task.

Tasks pass keys and paths, never tensors. They are not cached by Prefect: each step's own
output records a key over everything that shapes it (`codeprobe.provenance`), and a step
whose output already records its key returns at once, so a rerun recomputes nothing, a run
killed half way (even by kill -9) resumes from its finished outputs, and no stale result is
ever served after a change of code, data, model or library versions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext

from codeprobe.files import read_json
from codeprobe.interrupt import interruptible
from codeprobe.pipeline.config import RunConfig, parse_config
from codeprobe.pipeline.experiment import check_run, run_experiment
from codeprobe.pipeline.runners import Workers, dask_workers, describe_runner, task_runner
from codeprobe.pipeline.server import prefect_api
from codeprobe.pipeline.steps import Placements, counted, located
from codeprobe.progress import outer_only


class PrefectSteps:
    """Run each step as a Prefect task on the flow's task runner (one task per step name),
    recording which worker ran it (`placements`)."""

    def __init__(self, task_runner: Any) -> None:
        self._task_runner = task_runner
        self._tasks: dict[str, Any] = {}
        self._placements = Placements()

    def submit(self, name: str, fn: Callable[..., str], *args: Any) -> _Placed:
        if name not in self._tasks:
            self._tasks[name] = task(
                located(counted(name, fn)), name=name, cache_policy=NO_CACHE, persist_result=False, retries=0
            )
        return _Placed(self._tasks[name].submit(*args), name, self._placements)

    def placements(self) -> dict[str, dict[str, int]]:
        return self._placements.as_dict()

    @property
    def targets_at_once(self) -> int:
        """How many (model, language, dataset) targets the runner may probe side by side: one per
        Dask worker (`codeprobe.pipeline.experiment.run_all`); one on threads."""
        return dask_workers(self._task_runner) or 1

    @property
    def runner(self) -> str:
        return describe_runner(self._task_runner)  # once steps ran: a Dask client is started then


class _Placed:
    """A submitted step's handle: `result()` is its output path, and records where it ran."""

    def __init__(self, future: Any, name: str, placements: Placements) -> None:
        self._future, self._name, self._placements = future, name, placements

    def result(self) -> str:
        out, worker = self._future.result()
        self._placements.add(self._name, worker)
        return out


@flow(name="codeprobe-probing", task_runner=task_runner(Workers()))
@outer_only()  # the run's own bars only: tasks' threads would draw over each other
def probing_flow(config: dict[str, Any] | None = None, out_dir: str = "runs/main") -> str:
    """Run CAT-probing and AST-Probe over every (model, language, dataset) of `config`.

    Args:
        config: a RunConfig as a dict (JSON-able, so deployments can pass it; validated:
            `codeprobe.pipeline.config.parse_config`); None = defaults.
        out_dir: the run folder; strftime fields (e.g. "runs/%Y%m%d") are filled in at start,
            so a scheduled deployment can write each run to its own folder.
    Returns:
        The path of the run's report.md.

    An interrupt (Ctrl-C, SIGTERM through Prefect's handler) that ends the body also stops the
    steps running on the task runner's threads within a batch (`codeprobe.interrupt`), instead
    of the task runner waiting for them to finish.
    """
    log = get_run_logger()
    cfg = parse_config(config)
    run = Path(time.strftime(out_dir)).resolve()
    with interruptible():
        report = run_experiment(cfg, run, PrefectSteps(FlowRunContext.get().task_runner), log)
    create_markdown_artifact(
        markdown=report.read_text(encoding="utf-8"), key="codeprobe-report", description=f"codeprobe run {run}"
    )
    rows = summary_rows(read_json(run / "summary.json"))
    if rows:
        create_table_artifact(table=rows, key="codeprobe-layers", description="per-layer scores")
    return str(report)


def summary_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows, per layer (CAT) and per hidden state (AST-Probe), for a Prefect table artifact,
    from a run summary."""
    rows = []
    for result in summary.get("results", []):
        base = {
            "model": result["model"],
            "language": result["language"],
            "dataset": result["dataset"],
            **({"step": result["step"]} if result.get("step") is not None else {}),
        }
        for layer in (result.get("cat") or {}).get("layers", []):
            rows.append(
                {
                    **base,
                    "method": "CAT",
                    "layer": layer["layer"],
                    "score": layer["score"],
                    "random": layer["random_baseline"],
                    "positional": layer["positional_baseline"],
                }
            )
        for row in (result.get("astprobe") or {}).get("hidden_states", []):
            rows.append(
                {**base, "method": "AST-Probe F1 (test)", "hidden_state": row["hidden_state"], "score": row["f1"]}
            )
    return rows


def main_job(out_dir: str = "runs/main", config: RunConfig | None = None, workers: Workers | None = None) -> str:
    """The main job: the probing flow on the packaged default model over Python standard-library
    functions, every default method. Returns the report's path.

    `workers`: where the steps run (`codeprobe.pipeline.runners.Workers`: a local Dask cluster of
    worker processes, or an existing scheduler); None: this process's threads.

    Without `PREFECT_API_URL`, codeprobe starts the temporary Prefect server itself, in its own
    session, and stops it when the flow ends, also on Ctrl-C (`codeprobe.pipeline.server.prefect_api`):
    an interrupted run reports how it ended to a server that is still there, in a moment."""
    cfg = config or RunConfig()
    logging.getLogger("codeprobe").setLevel(logging.INFO)
    check_run(cfg, out_dir)  # a mistake is one line, before a server starts or the folder is claimed
    workers = workers or Workers()
    with prefect_api():  # first: local Dask workers inherit PREFECT_API_URL
        flow_ = probing_flow.with_options(task_runner=task_runner(workers)) if workers.uses_dask else probing_flow
        return flow_(config=cfg.to_dict(), out_dir=out_dir)

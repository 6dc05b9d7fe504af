"""Runs spread over Dask worker processes (`codeprobe.pipeline.runners`): the same numbers as a
run in one process, steps done by every worker and recorded per step, a step whose worker dies
rerun on another, and the CLI's --workers / --dask checks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from astprobe.tiny_model import tiny_model_dir  # noqa: F401  (session fixture)
from click.testing import CliRunner
from flow_configs import small_config
from prefect import flow
from prefect.context import FlowRunContext

from codeprobe.cli import main
from codeprobe.errors import InputError
from codeprobe.pipeline.flow import PrefectSteps, probing_flow
from codeprobe.pipeline.runners import LOCAL, Workers, check_scheduler, task_runner

pytestmark = pytest.mark.usefixtures("prefect_server")

# What differs between two runs of one experiment by design: where and how long they ran (a
# method's section may record its steps' times too, as the structural probes' do).
_NOT_RESULTS = {"run", "seconds", "stages", "execution", "versions"}
_TIMES = {"seconds", "cpu_seconds", "fit_seconds"}


def _results(summary: dict) -> dict:
    return _untimed({k: v for k, v in summary.items() if k not in _NOT_RESULTS})


def _untimed(value):
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in _TIMES}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def test_two_worker_processes_give_the_local_run_numbers(tiny_model_dir, python_jsonl, tmp_path):  # noqa: F811
    """Two datasets: on Dask their targets run side by side (`experiment.run_all`)."""
    other = tmp_path / "other.jsonl"
    other.write_text("".join(python_jsonl.read_text().splitlines(keepends=True)[::-1]))
    config = small_config(tiny_model_dir, python_jsonl, layers=(0, 2), ranks=(), shard_size=4)
    config["datasets"] = [str(python_jsonl), str(other)]
    probing_flow(config=config, out_dir=str(tmp_path / "local"))
    probing_flow.with_options(task_runner=task_runner(Workers(n=2)))(config=config, out_dir=str(tmp_path / "dask"))
    local, dask = (json.loads((tmp_path / r / "summary.json").read_text()) for r in ("local", "dask"))

    assert _results(dask) == _results(local)
    assert len(local["results"]) == 2
    assert local["execution"]["steps"]["cat-shard"] == {LOCAL: 12}
    placed = dask["execution"]["steps"]
    assert "2 workers" in dask["execution"]["task_runner"]
    assert sum(placed["cat-shard"].values()) == 12 and sum(placed["heads-shard"].values()) == 12
    workers = {w for counts in placed.values() for w in counts}
    assert len(workers) == 2 and LOCAL not in workers, placed


def _dies_once(marker: str, out: str) -> str:
    """A step whose first attempt kills its worker process before writing anything."""
    if not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        os._exit(1)
    Path(out).write_text(f"{Path(marker).read_text()} {os.getpid()}")
    return out


@flow(task_runner=task_runner(Workers(n=2)))
def _one_step(folder: str) -> tuple[str, dict]:
    steps = PrefectSteps(FlowRunContext.get().task_runner)
    out = steps.submit("dies-once", _dies_once, f"{folder}/marker", f"{folder}/out").result()
    return out, steps.placements()


def test_a_step_whose_worker_dies_runs_again_on_another(tmp_path):
    out, placements = _one_step(str(tmp_path))
    first, second = Path(out).read_text().split()
    assert first != second  # the second attempt ran in another process
    (counts,) = placements.values()
    assert sum(counts.values()) == 1  # the step counts once: where it finished


def test_workers_and_scheduler_are_checked():
    with pytest.raises(InputError, match="not both"):
        Workers(n=2, address="tcp://127.0.0.1:8786")
    with pytest.raises(InputError, match="at least 1"):
        Workers(n=0)
    assert "2 worker processes" in Workers(n=2).describe()
    assert not Workers().uses_dask


def test_cli_refuses_workers_with_a_scheduler(tmp_path):
    result = CliRunner().invoke(main, ["run", "--out", str(tmp_path / "r"), "--workers", "2", "--dask", "tcp://h:1"])
    assert result.exit_code == 2 and "not both" in result.output
    result = CliRunner().invoke(main, ["run", "--out", str(tmp_path / "r"), "--workers", "0"])
    assert result.exit_code == 2 and "--workers" in result.output


def test_a_scheduler_that_does_not_answer_is_one_line_before_any_work(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, processes=False, protocol="tcp", dashboard_address=":0") as cluster:
        check_scheduler(cluster.scheduler_address)
    with pytest.raises(InputError, match="no Dask scheduler answers at tcp://127.0.0.1:1"):
        check_scheduler("tcp://127.0.0.1:1")
    result = CliRunner().invoke(main, ["run", "--out", str(tmp_path / "r"), "--dask", "tcp://127.0.0.1:1"])
    assert result.exit_code == 2 and "no Dask scheduler answers" in result.output
    assert not (tmp_path / "r").exists()  # the run folder is not claimed

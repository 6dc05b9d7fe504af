"""A checkpoint series probed by the pipeline: one model per finished checkpoint in its own
folder, each result with its training step, the over-training report; a series that grows is
probed only where it is new (also as a scheduled Prefect deployment), a checkpoint replaced in
place is probed again, and a deleted one keeps its results."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from flow_configs import small_config
from tiny_checkpoints import series_copy, tiny_training  # noqa: F401  (session fixture)

from codeprobe.pipeline.config import parse_config
from codeprobe.pipeline.experiment import run_experiment
from codeprobe.pipeline.registry import method
from codeprobe.pipeline.report.over_training import series_matrix

DATA = "python-python_small"  # <language>-<dataset> of the python_jsonl fixture


def step_outputs(run: Path) -> dict[str, int]:
    """mtime of every per-checkpoint output file (codeprobe's records and locks, `.<name>.sum`
    and `.<name>.lock`, left out)."""
    files = [p for method in ("cat", "astprobe") for p in (run / method).rglob("*") if p.is_file() and p.name[0] != "."]
    return {str(p.relative_to(run)): p.stat().st_mtime_ns for p in files}


def of_step(outputs: dict[str, int], step: int) -> dict[str, int]:
    return {p: t for p, t in outputs.items() if f"/step-{step}/" in p}


def test_a_series_is_probed_per_checkpoint_and_only_where_new(tiny_training, python_jsonl, tmp_path):  # noqa: F811
    series = series_copy(tiny_training, tmp_path / "mlm", steps=(1, 2))
    run = tmp_path / "run"
    cfg = parse_config(small_config(series, python_jsonl, ranks=()))
    report = run_experiment(cfg, run)

    summary = json.loads((run / "summary.json").read_text())
    results = summary["results"]
    assert [r["step"] for r in results] == [1, 2] and all(type(r["step"]) is int for r in results)
    assert all(r["model"] == str(series) for r in results)
    assert [r["checkpoint"] for r in results] == [str(series / "checkpoint-1"), str(series / "checkpoint-2")]
    for step in (1, 2):
        assert (run / "cat" / "mlm" / f"step-{step}" / DATA / "summary.json").is_file()
        assert (run / "astprobe" / "mlm" / f"step-{step}" / DATA / "hidden_states.json").is_file()
    assert results[0]["model_info"]["fingerprint"] != results[1]["model_info"]["fingerprint"]

    # The report: per-layer sections for the last checkpoint only, then the series section.
    text = report.read_text()
    assert "## Over training (checkpoint series)" in text
    plots = sorted(p.name for p in (run / "plots").glob("series-*.png"))
    assert plots == [
        f"series-mlm-python-python_small-{m}.png" for m in ("astprobe", "cat", "diagnostic", "heads", "structural")
    ]
    assert text.count("checkpoint-2, python") >= 2 and "checkpoint-1, python" not in text
    steps, layers, scores = series_matrix(results, "astprobe", method("astprobe").series)
    assert steps == [1, 2] and layers == [0, 1, 2] and scores.shape == (2, 3)
    assert scores[1, 2] == next(p["f1"] for p in results[1]["astprobe"]["hidden_states"] if p["hidden_state"] == 2)
    for r in results:
        best = method("astprobe").series.best(r["astprobe"])
        assert best["hidden_state"] == r["astprobe"]["best_hidden_state"]
        assert f"| {r['step']} | {best['hidden_state']} | {best['f1']:.3f} [" in text
        cat = method("cat").series.best(r["cat"])
        assert cat["score"] == max(row["score"] for row in r["cat"]["layers"])
        assert f"| {r['step']} | {cat['layer']} | {cat['score']:.3f} [" in text
    steps, layers, scores = series_matrix(results, "cat", method("cat").series)
    assert layers == [0, 1] and np.isfinite(scores).all()
    # Heads: each relation's best-head score per step; the mean over relations followed.
    steps, relations, scores = series_matrix(results, "heads", method("heads").series)
    assert steps == [1, 2] and relations == sorted(relations) and scores.shape == (2, len(relations))
    for r in results:
        best = method("heads").series.best(r["heads"])
        assert best["score"] == r["heads"]["headline"]["mean"]
        assert f"| {r['step']} | {best['n_relations']} | {best['score']:.3f} [" in text

    # Rerun: nothing recomputed. A new checkpoint: only it is probed.
    before = step_outputs(run)
    run_experiment(cfg, run)
    assert step_outputs(run) == before
    shutil.copytree(tiny_training / "checkpoint-3", series / "checkpoint-3")
    run_experiment(cfg, run)
    after = step_outputs(run)
    assert {p: after[p] for p in before} == before and of_step(after, 3)
    assert [r["step"] for r in json.loads((run / "summary.json").read_text())["results"]] == [1, 2, 3]

    # A checkpoint replaced in place is probed again; a deleted one keeps its results.
    shutil.copy(tiny_training / "checkpoint-1" / "model.safetensors", series / "checkpoint-2" / "model.safetensors")
    shutil.rmtree(series / "checkpoint-1")
    run_experiment(cfg, run)
    final = step_outputs(run)
    assert of_step(final, 1) == of_step(after, 1) and of_step(final, 3) == of_step(after, 3)
    assert [p for p, t in of_step(after, 2).items() if final.get(p) == t] == []
    results = json.loads((run / "summary.json").read_text())["results"]
    assert [(r["step"], r["checkpoint"] is None) for r in results] == [(1, True), (2, False), (3, False)]
    assert results[0]["cat"]["layers"] and results[0]["astprobe"]["hidden_states"]


@pytest.mark.usefixtures("prefect_server")
def test_scheduled_runs_probe_checkpoints_as_they_land(tiny_training, python_jsonl, tmp_path):  # noqa: F811
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    from flows.deploy import deployment

    series = series_copy(tiny_training, tmp_path / "mlm", steps=(1, 2))
    run = tmp_path / "run"  # no strftime fields: every scheduled run resumes this folder
    config = parse_config(small_config(series, python_jsonl, astprobe=False))
    deployment(name="test-checkpoints", cron="*/30 * * * *", config=config, out_dir=str(run)).apply()

    def scheduled_run() -> None:
        """What a worker does with a scheduled run: start the engine on it in a fresh process."""
        flow_run = run_deployment(name="codeprobe-probing/test-checkpoints", timeout=0)
        env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT__FLOW_RUN_ID": str(flow_run.id)}
        subprocess.run(
            [sys.executable, "-m", "prefect.engine"],
            env=env,
            check=True,
            timeout=600,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        finished = asyncio.run(_read_flow_run(flow_run.id))
        assert finished.state.is_completed(), finished.state

    scheduled_run()
    first = step_outputs(run)
    assert of_step(first, 1) and of_step(first, 2) and not of_step(first, 3)

    shutil.copytree(tiny_training / "checkpoint-3", series / "checkpoint-3")  # lands between two runs
    scheduled_run()
    second = step_outputs(run)
    assert {p: second[p] for p in first} == first, "a finished checkpoint was probed again"
    assert set(second) - set(first) == set(of_step(second, 3)) != set()
    results = json.loads((run / "summary.json").read_text())["results"]
    assert [r["step"] for r in results] == [1, 2, 3]


async def _read_flow_run(flow_run_id):
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return await client.read_flow_run(flow_run_id)

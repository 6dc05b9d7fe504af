"""The probing flow end to end on a tiny random-weight model: run folder, tables, report,
caching, resuming after kill -9, bad input, fail-fast preflight and deployment (Dask worker
processes: test_dask_workers.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from astprobe.tiny_model import tiny_model_dir  # noqa: F401  (session fixture)
from flow_configs import small_config, step_outputs

from codeprobe.errors import DatasetError, ModelLoadError
from codeprobe.pipeline import data
from codeprobe.pipeline.flow import probing_flow
from codeprobe.pipeline.methods.cat import steps as cat
from codeprobe.probes.cat.scorer import CATAccumulator

pytestmark = pytest.mark.usefixtures("prefect_server")


def assert_one_row_per_sample_layer(run: Path, n_samples: int) -> None:
    table = pq.read_table(next(run.glob("cat/*/*/samples.parquet"))).to_pydict()
    keys = list(zip(table["sample_id"], table["layer"], table["head"]))
    assert len(keys) == len(set(keys)), "duplicate rows"
    assert len(set(table["sample_id"])) == n_samples


def test_run_writes_tables_report_and_rerun_recomputes_nothing(tiny_model_dir, python_jsonl, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    config = small_config(tiny_model_dir, python_jsonl)
    report = Path(probing_flow(config=config, out_dir=str(run)))
    assert report == run / "report.md" and report.exists()

    summary = json.loads((run / "summary.json").read_text())
    (result,) = summary["results"]
    assert result["data"]["kept"] == 24
    cat_layers = result["cat"]["layers"]
    assert [row["layer"] for row in cat_layers] == [0, 1]  # the tiny model's 2 transformer layers
    for row in cat_layers:
        assert 0 <= row["score"] <= 1 and 0 <= row["random_baseline"] <= 1 and 0 <= row["positional_baseline"] <= 1
        assert row["n_used"] + row["n_skipped"] == 24
    ast = result["astprobe"]
    assert [p["hidden_state"] for p in ast["hidden_states"]] == [0, 1, 2]
    assert all(0 <= p["f1"] <= 1 for p in ast["hidden_states"] if p["f1"] is not None)
    assert ast["baselines"]["embedding"]["hidden_state"] == 0
    assert [p["hidden_state"] for p in ast["baselines"]["random"]] == [0, 1, 2]
    assert sorted(p["rank"] for p in ast["ranks"]["points"]) == [16, 32]
    control = ast["label_control"]  # the label control at the best hidden state
    assert control["hidden_state"] == ast["best_hidden_state"]
    for label in ("c", "u"):
        x = control[label]
        assert 0 <= x["control"] <= 1 and 0 <= x["task"] <= 1 and x["control_ci"][0] <= x["control"]
        sel = x["selectivity"]
        assert (
            np.isclose(sel["mean"], x["task"] - x["control"], atol=1e-5) and sel["ci"][0] <= sel["mean"] <= sel["ci"][1]
        )
    assert summary["versions"]["tree-sitter-python"] and summary["config"]["seed"] == 0

    assert_one_row_per_sample_layer(run, 24)
    assert (run / "plots" / "cat_by_layer.png").exists() and (run / "plots" / "astprobe_by_hidden_state.png").exists()
    text = report.read_text()
    assert "text* sentence encoder" not in text  # a tiny random model is not the packaged text model
    assert "| layer | CAT-score | random | positional |" in text

    before = step_outputs(run)
    # CAT shards, summary; AST-Probe hidden states, random weights, ranks, label control; data; heads shards,
    # random weights,
    # test snippets' hits (for onsets), summary; structural task, control, random weights; per diagnostic
    # task its fit and its online codes
    assert len(before) == 3 + 1 + 4 + 3 + 3 + 1 + 1 + 1 + 3 + 2 * 2
    probing_flow(config=config, out_dir=str(run))
    assert step_outputs(run) == before


def test_killed_run_resumes_without_redoing_finished_shards(tiny_model_dir, python_jsonl, tmp_path):  # noqa: F811
    from prefect.settings import PREFECT_API_URL

    run = tmp_path / "run"
    config = small_config(tiny_model_dir, python_jsonl, astprobe=False, shard_size=4)
    code = (
        "import json, sys; from codeprobe.pipeline.flow import probing_flow; "
        "probing_flow(config=json.loads(sys.argv[1]), out_dir=sys.argv[2])"
    )
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(config), str(run)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while len(list(run.glob("cat/*/*/shard-*.npz"))) < 2:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no shard finished in time"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(0.5)  # let a result write that raced the kill land on disk before we look
    finished = {p: p.stat().st_mtime_ns for p in run.glob("cat/*/*/shard-*.npz")}
    assert 2 <= len(finished) < 6 and not (run / "summary.json").exists()

    probing_flow(config=config, out_dir=str(run))
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())
    assert len(list(run.glob("cat/*/*/shard-*.npz"))) == 6
    assert_one_row_per_sample_layer(run, 24)


def test_bad_rows_are_skipped_and_counted(tiny_model_dir, python_jsonl, tmp_path):  # noqa: F811
    data = tmp_path / "messy_python.jsonl"
    good = python_jsonl.read_bytes()
    bad = (
        b"\n".join(
            [
                b"",  # empty line
                b'{"id": "utf8", "code": "def f():\\n    return 1"}'.replace(b"return 1", b"return '\xff'"),
                b"this is not json",
                json.dumps({"id": "broken", "code": "def f(:\n    return ("}).encode(),
                json.dumps({"id": "huge", "code": "def big():\n" + "    x = 1\n" * 5000}).encode(),
                json.dumps({"id": "java", "language": "java", "code": "int f() { return 1; }"}).encode(),
                json.dumps({"id": "nocode", "text": "hello"}).encode(),
            ]
        )
        + b"\n"
    )
    data.write_bytes(bad + good)
    run = tmp_path / "run"
    probing_flow(config=small_config(tiny_model_dir, data, astprobe=False), out_dir=str(run))
    (result,) = json.loads((run / "summary.json").read_text())["results"]
    skipped = result["data"]["skipped"]
    for reason in ("invalid_utf8", "parse_error", "too_long", "wrong_language"):
        assert skipped.get(reason, 0) >= 1, (reason, skipped)
    assert sum(v for k, v in skipped.items() if k != "not_sampled") >= 6
    assert result["cat"]["layers"][0]["n_used"] == 24


def test_missing_model_or_dataset_fails_before_any_work(tiny_model_dir, python_jsonl, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    started = time.monotonic()
    with pytest.raises(ModelLoadError):
        probing_flow(config=small_config(tmp_path / "no-such-model", python_jsonl), out_dir=str(run))
    with pytest.raises(DatasetError):
        probing_flow(config=small_config(tiny_model_dir, tmp_path / "missing.jsonl"), out_dir=str(run))
    assert not run.exists()
    assert time.monotonic() - started < 120


def test_cat_shard_reads_short_snippets_first_and_keeps_the_data_order(tiny_model_dir, tmp_path):  # noqa: F811
    """The shard runs its snippets shortest first (similar lengths per batch), and writes
    them, scored or skipped, in the data's order."""
    from codeprobe.pipeline.config import RunConfig

    settings = cat.step_settings(RunConfig(batch_size=4), "python")
    data_dir = data.prepare_data("stdlib", "python", 40, 0, str(tmp_path / "data"), key="order")
    snippets = data.read_snippets(data_dir)[:24]
    assert [len(s.code) for s in snippets] != sorted(len(s.code) for s in snippets)
    path = cat.cat_shard(
        str(tiny_model_dir), "python", data_dir, 0, 24, settings, str(tmp_path / "shard-0000.npz"), "k"
    )
    rows = CATAccumulator.load(path).samples()
    assert list(dict.fromkeys(rows.sample_id.tolist())) == [s.id for s in snippets]
    assert np.count_nonzero(rows.skip_reason == "") > 20 * len(set(rows.layer.tolist()))


@pytest.mark.parametrize(("types", "per_head"), [("paper", False), ("all", True), ("topk", False)])
def test_shards_and_reduce_give_what_one_library_run_gives(tiny_model_dir, tmp_path, types, per_head):  # noqa: F811
    """Shards scored apart (paper, all) or keeping their inputs (topk), then the reduce: the
    same rows, rate table and summary as `CATProbe.score` over all the snippets in one go, and
    the per-head rows beside the shards equal the library's."""
    from codeprobe.pipeline.config import RunConfig
    from codeprobe.pipeline.steps import loaded_model

    settings = cat.step_settings(RunConfig(batch_size=4, cat_types=types, cat_per_head=per_head), "python")
    data_dir = data.prepare_data("stdlib", "python", 30, 0, str(tmp_path / "data"), key="same")
    model = str(tiny_model_dir)
    paths = [
        cat.cat_shard(model, "python", data_dir, k, 8, settings, str(tmp_path / "cat" / f"shard-{k:04d}.npz"), f"k{k}")
        for k in range(4)
    ]
    cat.cat_reduce(model, "python", paths, settings, str(tmp_path / "cat"), "r")
    with np.load(paths[0]) as shard:  # scored rows, or (topk) the samples' inputs
        assert ("row_score" in shard.files, "input_attention" in shard.files) == (types != "topk", types == "topk")

    result = cat.cat_probe(settings).score(data.read_snippets(data_dir), loaded_model(model, None), language="python")
    want = result.samples.columns()
    got = pq.read_table(tmp_path / "cat" / "samples.parquet").to_pydict()
    mean = want["head"] == -1
    for name, column in want.items():
        np.testing.assert_array_equal(np.asarray(got[name]), column[mean], err_msg=name)
    layers = pq.read_table(tmp_path / "cat" / "layers.parquet").to_pydict()
    for name, column in result.summary.columns().items():
        np.testing.assert_array_equal(np.asarray(layers[name]), column[result.summary.head == -1], err_msg=name)
    rates = pq.read_table(tmp_path / "cat" / "rates.parquet").to_pydict()
    for name, column in result.rates.rows().items():
        np.testing.assert_array_equal(np.asarray(rates[name]), column, err_msg=name)

    heads = [cat.heads_path(p) for p in paths]
    assert all(h.exists() for h in heads) == per_head
    if per_head:
        scored = want["n_aligned"] > 0  # rows of the samples that were not skipped
        loaded = [np.load(h) for h in heads]
        for name in ("sample_id", "layer", "head", "score"):
            np.testing.assert_array_equal(np.concatenate([z[name] for z in loaded]), want[name][scored], err_msg=name)


def test_deployment_with_cron_schedule_runs_once(tiny_model_dir, python_jsonl, tmp_path):  # noqa: F811
    import asyncio

    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    from codeprobe.pipeline.config import parse_config
    from flows.deploy import deployment

    config = parse_config(small_config(tiny_model_dir, python_jsonl, astprobe=False))
    dep = deployment(name="test-nightly", cron="0 3 * * *", config=config, out_dir=str(tmp_path / "run-%Y"))
    dep_id = dep.apply()
    stored = asyncio.run(_read(lambda client: client.read_deployment(dep_id)))
    assert stored.schedules[0].schedule.cron == "0 3 * * *"

    # What a worker does with a scheduled run: start the engine on it in a fresh process.
    flow_run = run_deployment(name="codeprobe-probing/test-nightly", timeout=0)
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT__FLOW_RUN_ID": str(flow_run.id)}
    subprocess.run(
        [sys.executable, "-m", "prefect.engine"],
        env=env,
        check=True,
        timeout=600,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    finished = asyncio.run(_read(lambda client: client.read_flow_run(flow_run.id)))
    assert finished.state.is_completed(), finished.state
    assert list(tmp_path.glob("run-*/summary.json"))


async def _read(query):
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return await query(client)

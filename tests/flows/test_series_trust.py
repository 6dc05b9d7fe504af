"""Issue 26, "series you can trust": checkpoints of a series whose weights are byte-identical are
reported as duplicates (run log, summary.json, report) and probed once; a checkpoint that cannot
load (its config.json cut short) is skipped with its reason, counted and shown, and the others
are probed; a single model that cannot load still fails early, in one line that names the JSON
error and no trust_remote_code hint."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import pytest
from flow_configs import small_config
from tiny_checkpoints import series_copy, tiny_training  # noqa: F401  (session fixture)

from codeprobe.errors import InputError, ModelLoadError
from codeprobe.model.fingerprint import folder_fingerprint, weights_fingerprint
from codeprobe.pipeline.config import parse_config
from codeprobe.pipeline.experiment import check_run, run_experiment

DATA = "python-python_small"  # <language>-<dataset> of the python_jsonl fixture


def cat_only(series, data) -> dict:
    """CAT-probing only: the series' bookkeeping is the same for every method."""
    return small_config(series, data, astprobe=False, heads=None)


def cut_config(folder) -> None:
    """config.json cut short, as a copy or a save that did not finish leaves it."""
    text = (folder / "config.json").read_text()
    (folder / "config.json").write_text(text[: len(text) // 2])


def test_duplicate_checkpoints_are_reported_and_probed_once(tiny_training, python_jsonl, tmp_path, caplog):  # noqa: F811
    series = series_copy(tiny_training, tmp_path / "mlm", steps=(1, 2, 3))
    # step 3 serves step 2's weights (as 86 of 154 step branches of a Pythia model did); its
    # trainer state and the rest stay its own
    shutil.copy(series / "checkpoint-2" / "model.safetensors", series / "checkpoint-3" / "model.safetensors")
    assert weights_fingerprint(series / "checkpoint-3") == weights_fingerprint(series / "checkpoint-2")
    assert weights_fingerprint(series / "checkpoint-1") != weights_fingerprint(series / "checkpoint-2")
    run = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="codeprobe.pipeline"):
        report = run_experiment(parse_config(cat_only(series, python_jsonl)), run)

    summary = json.loads((run / "summary.json").read_text())
    assert [r["step"] for r in summary["results"]] == [1, 2]  # no result, no point, for step 3
    assert (run / "cat" / "mlm" / "step-2" / DATA / "summary.json").is_file()
    assert not (run / "cat" / "mlm" / "step-3").exists()  # probed once
    assert summary["series"] == [
        {
            "model": str(series),
            "name": "mlm",
            "folder": "mlm",
            "found": 3,
            "probed": [1, 2],
            "duplicates": {"3": 2},
            "skipped": [],
            "skipped_by_reason": {},
        }
    ]
    logged = [r.getMessage() for r in caplog.records]
    assert "series mlm: 3 checkpoints found, 2 probed, 1 duplicate" in logged
    assert "checkpoint-3: step 3 has the same weights as step 2: a duplicate, probed once (as step 2)" in logged
    text = report.read_text()
    assert "- Series mlm: 3 checkpoints found, 2 probed, 1 duplicate." in text
    assert "duplicates (the same weights as an earlier step: probed once, drawn once, at the earlier step): " in text
    assert "step 3 = step 2." in text
    assert "| 3 |" not in text  # the series tables have rows for steps 1 and 2 only
    assert "| 1 |" in text and "| 2 |" in text
    assert "step 3 = step 2" in (run / "report.html").read_text()

    # The duplicate becomes a checkpoint of its own once its weights differ: probed then.
    shutil.copy(tiny_training / "checkpoint-3" / "model.safetensors", series / "checkpoint-3" / "model.safetensors")
    run_experiment(parse_config(cat_only(series, python_jsonl)), run)
    summary = json.loads((run / "summary.json").read_text())
    assert [r["step"] for r in summary["results"]] == [1, 2, 3]
    assert summary["series"][0]["duplicates"] == {} and summary["series"][0]["probed"] == [1, 2, 3]


def test_a_checkpoint_that_cannot_load_is_skipped_with_its_reason(tiny_training, python_jsonl, tmp_path, caplog):  # noqa: F811
    series = series_copy(tiny_training, tmp_path / "mlm", steps=(1, 2, 3))
    cut_config(series / "checkpoint-2")
    (series / "checkpoint-7").mkdir()  # just created by the trainer: still being written
    cfg = parse_config(cat_only(series, python_jsonl))
    run = tmp_path / "run"
    infos = check_run(cfg, run)  # what `codeprobe run` checks before its server: no error now
    assert sorted(infos) == [str(series / "checkpoint-1"), str(series / "checkpoint-3")]
    with caplog.at_level(logging.INFO, logger="codeprobe.pipeline"):
        report = run_experiment(cfg, run)

    summary = json.loads((run / "summary.json").read_text())
    assert [r["step"] for r in summary["results"]] == [1, 3]
    record = summary["series"][0]
    assert record["found"] == 4 and record["probed"] == [1, 3] and record["duplicates"] == {}
    assert record["skipped_by_reason"] == {"cannot load": 1, "no model": 1}
    skipped = {s["checkpoint"]: s for s in record["skipped"]}
    assert skipped[str(series / "checkpoint-7")] == {
        "checkpoint": str(series / "checkpoint-7"),
        "step": None,
        "reason": "no model",
        "detail": "",
    }
    bad = skipped[str(series / "checkpoint-2")]
    assert bad["step"] == 2 and bad["reason"] == "cannot load"
    assert bad["detail"].startswith(f"{series / 'checkpoint-2' / 'config.json'} is not valid JSON (cut short?): ")
    assert "trust_remote_code" not in bad["detail"]

    logged = [r.getMessage() for r in caplog.records]
    assert "series mlm: 4 checkpoints found, 2 probed, 2 skipped (cannot load 1, no model 1)" in logged
    assert any(m.startswith("skipped checkpoint-2 (step 2): cannot load: ") for m in logged), logged
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("checkpoint-2" in m for m in warnings)
    text = report.read_text()
    assert "- Series mlm: 4 checkpoints found, 2 probed, 2 skipped (cannot load 1, no model 1)." in text
    assert "- Series mlm, skipped checkpoint-2 (step 2): cannot load: " in text and "not valid JSON" in text
    assert "- Series mlm, skipped checkpoint-7: no model." in text

    # Repaired, it is probed on the next run; the others are not probed again.
    before = {p: p.stat().st_mtime_ns for p in (run / "cat" / "mlm").rglob("*.npz")}
    shutil.copy(tiny_training / "checkpoint-2" / "config.json", series / "checkpoint-2" / "config.json")
    run_experiment(cfg, run)
    summary = json.loads((run / "summary.json").read_text())
    assert [r["step"] for r in summary["results"]] == [1, 2, 3]
    assert summary["series"][0]["skipped_by_reason"] == {"no model": 1}
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())


def test_a_series_none_of_which_loads_fails_before_any_work(tiny_training, python_jsonl, tmp_path):  # noqa: F811
    series = series_copy(tiny_training, tmp_path / "mlm", steps=(1, 2))
    for step in (1, 2):
        cut_config(series / f"checkpoint-{step}")
    with pytest.raises(InputError, match=r"no checkpoint of .* can be probed: checkpoint-1 \(step 1\): cannot load"):
        check_run(parse_config(cat_only(series, python_jsonl)), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_duplicates_follow_the_weights_not_the_other_files(tiny_training, tmp_path):  # noqa: F811
    from codeprobe.pipeline.series import series_state

    series = series_copy(tiny_training, tmp_path / "mlm", steps=(1, 2))
    shutil.copy(series / "checkpoint-1" / "model.safetensors", series / "checkpoint-2" / "model.safetensors")
    config = json.loads((series / "checkpoint-2" / "config.json").read_text())
    (series / "checkpoint-2" / "config.json").write_text(json.dumps({**config, "note": "edited"}))
    assert folder_fingerprint(series / "checkpoint-1") != folder_fingerprint(series / "checkpoint-2")
    loaded = []
    state = series_state(str(series), loaded.append)
    assert [m.step for m in state.models] == [1] and state.duplicate_of == {2: 1}
    assert loaded == [str(series / "checkpoint-1")]  # a duplicate is not even loaded
    # The first of a group of duplicates that loads is probed: the earlier one is skipped.
    cut_config(series / "checkpoint-1")

    def load(name):
        from codeprobe.model import load_model

        load_model(name, device="cpu")

    state = series_state(str(series), load)
    assert [m.step for m in state.models] == [2] and state.duplicate_of == {}
    assert [(s.step, s.reason) for s in state.skipped] == [(1, "cannot load")]


def test_a_single_model_with_a_cut_config_fails_early_in_one_line(tiny_training, python_jsonl, tmp_path):  # noqa: F811
    model = tmp_path / "model"
    shutil.copytree(tiny_training / "checkpoint-1", model)
    cut_config(model)
    with pytest.raises(ModelLoadError) as err:
        check_run(parse_config(cat_only(model, python_jsonl)), tmp_path / "run")
    assert "config.json is not valid JSON (cut short?)" in str(err.value)
    assert "trust_remote_code" not in str(err.value)

    config = tmp_path / "config.json"
    config.write_text(json.dumps(cat_only(model, python_jsonl)))
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api", "PREFECT_HOME": str(tmp_path / "prefect")}
    script = "import sys; from codeprobe.cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", script, "run", "--config", str(config), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("codeprobe: error:") and "is not valid JSON" in last, done.stderr
    assert "trust_remote_code" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()

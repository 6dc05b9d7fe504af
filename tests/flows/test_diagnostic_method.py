"""The diagnostic classifiers as a method of a run, on a tiny random-weight model: the summary
section's numbers and intervals, selection on validation, no forward pass of their own (AST-Probe's
caches are read, the random-weights model's too), a rerun that recomputes nothing, per-snippet
scores for onsets, the HTML report's section in headless Chromium, and a config that turns the
method off."""

from __future__ import annotations

import json
import math
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
from astprobe.tiny_model import tiny_model_dir  # noqa: F401  (session fixture)
from flow_configs import small_config

from codeprobe.pipeline.config import ConfigError, DiagnosticConfig, parse_config
from codeprobe.pipeline.experiment import run_experiment
from codeprobe.pipeline.registry import method
from codeprobe.pipeline.runfolder import ResultFolder
from codeprobe.probes.diagnostic import LABEL_TASKS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "viz"))
from browser import console_problems, open_browser, wait_ready  # noqa: E402


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def _diagnostic_outputs(run) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in run.glob("diagnostic/*/*/*.json")}


@pytest.fixture(scope="module")
def finished_run(tiny_model_dir, python_jsonl, tmp_path_factory):  # noqa: F811
    run = tmp_path_factory.mktemp("diagnostic") / "run"
    cfg = parse_config(
        small_config(tiny_model_dir, python_jsonl, cat=False, heads=False, diagnostic={"random_weights": True})
    )
    run_experiment(cfg, run)
    return run, cfg


def test_section_has_both_tasks_with_finite_scores_and_intervals(finished_run):
    run, _ = finished_run
    (result,) = json.loads((run / "summary.json").read_text())["results"]
    d = result["diagnostic"]
    assert d["selection"] == "validation" and list(d["tasks"]) == list(LABEL_TASKS)
    assert d["seconds"]["total"] > 0 and d["cpu_seconds"]["total"] > 0
    assert all(d["splits"][s] > 0 for s in ("train", "valid", "test"))
    for t in d["tasks"].values():
        assert [r["hidden_state"] for r in t["hidden_states"]] == [0, 1, 2]
        majority = t["baselines"]["majority"]
        assert 0 < majority["accuracy"] < 1 and majority["accuracy_ci"][0] <= majority["accuracy"]
        for r in t["hidden_states"]:
            for score in ("accuracy", "control_accuracy", "random_weights_accuracy"):
                low, high = r[f"{score}_ci"]
                assert 0 <= low <= r[score] <= high <= 1
            for diff in ("selectivity", "minus_majority", "minus_random_weights"):
                assert _finite(r[diff]["mean"]) and r[diff]["ci"][0] <= r[diff]["mean"] <= r[diff]["ci"][1]
            assert ("minus_embedding" in r) == (r["hidden_state"] != 0)
            assert math.isclose(r["selectivity"]["mean"], r["accuracy"] - r["control_accuracy"], abs_tol=1e-5)
        # The hidden state is chosen on validation, never on test.
        valid = [r["valid_accuracy"] for r in t["hidden_states"]]
        assert t["best_hidden_state"] == int(np.argmax(valid))
        (coded,) = [r for r in t["hidden_states"] if "mdl" in r]  # MDL at the selected hidden state only
        assert coded["hidden_state"] == t["best_hidden_state"]
        code = coded["mdl"]
        assert code["uniform_bits"] > 0 and code["online_bits"] > 0
        assert math.isclose(code["compression"], code["uniform_bits"] / code["online_bits"], rel_tol=1e-5)
        assert _finite(code["control_compression"])


def test_no_forward_pass_of_its_own_and_report_and_onsets(finished_run):
    run, _ = finished_run
    # AST-Probe's caches only: the three splits, pretrained and random weights.
    assert len(list((run / "cache" / "hidden_states").glob("*/meta.json"))) == 6
    text = (run / "report.md").read_text()
    assert "## Diagnostic classifiers" in text and "| hidden state | valid acc | test acc | control acc |" in text
    assert (run / "plots" / "diagnostic_parent_type_by_hidden_state.png").exists()
    (result,) = json.loads((run / "summary.json").read_text())["results"]
    folder = ResultFolder(next((run / "diagnostic").glob("*/*")))
    scores = method("diagnostic").per_snippet(folder, result["diagnostic"])
    rows = result["diagnostic"]["tasks"]["parent_type"]["hidden_states"]
    assert scores.values.shape == (len(scores.ids), 3) and scores.ids
    assert np.allclose(scores.values.mean(axis=0), [r["accuracy"] for r in rows])


def test_html_section_shows_the_summary(finished_run):
    run, _ = finished_run
    (result,) = json.loads((run / "summary.json").read_text())["results"]
    with open_browser() as driver:
        driver.get((run / "report.html").resolve().as_uri())
        wait_ready(driver)
        assert console_problems(driver) == []
        assert "Diagnostic classifiers" in [a.text for a in driver.find_elements("css selector", "nav a")]
        for task, t in result["diagnostic"]["tasks"].items():
            (table,) = driver.find_elements("css selector", f"[data-testid=diagnostic-{task}]")
            rows = table.find_elements("css selector", "tr")[1:]
            assert len(rows) == len(t["hidden_states"])
            for tr, r in zip(rows, t["hidden_states"]):  # sorted by hidden state
                cells = [td.get_attribute("textContent") for td in tr.find_elements("css selector", "td")]
                assert cells[2].startswith(f"{r['accuracy']:.3f} [{r['accuracy_ci'][0]:.3f}")
                assert cells[3].startswith(f"{r['control_accuracy']:.3f}")


def test_rerun_recomputes_nothing(finished_run):
    run, cfg = finished_run
    before = _diagnostic_outputs(run)
    assert len(before) == 2 + 2 + 2  # per task: the fit, the random-weights fit, the online codes
    run_experiment(cfg, run)
    assert _diagnostic_outputs(run) == before


def test_off_means_no_section(tiny_model_dir, python_jsonl, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    settings = dict(cat=False, heads=False, diagnostic=None, ranks=(), random_baseline=False)
    run_experiment(parse_config(small_config(tiny_model_dir, python_jsonl, **settings)), run)
    (result,) = json.loads((run / "summary.json").read_text())["results"]
    assert "diagnostic" not in result and not (run / "diagnostic").exists()
    assert "## Diagnostic classifiers" not in (run / "report.md").read_text()


def test_config_section():
    assert parse_config({}).diagnostic == DiagnosticConfig()
    assert parse_config({"diagnostic": False}).diagnostic is None
    assert parse_config({"diagnostic": True}).diagnostic == DiagnosticConfig()
    tasks, _ = typing.get_args(DiagnosticConfig.model_fields["tasks"].annotation)  # tuple[Literal[...], ...]
    assert typing.get_args(tasks) == LABEL_TASKS == DiagnosticConfig().tasks
    with pytest.raises(ConfigError, match="diagnostic.tasks"):
        parse_config({"diagnostic": {"tasks": ["parent_type", "parent_type"]}})
    with pytest.raises(ConfigError, match="diagnostic.mdl"):
        parse_config({"diagnostic": {"mdl": "everywhere"}})

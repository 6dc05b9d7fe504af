"""Issue 26, "onsets": a tiny checkpoint series probed by every method has, in summary.json, an
onset record per method and row of its series curve (a duplicate checkpoint no point of its
own), each resting on paired per-snippet differences that agree with the summary's scores; the
report's over-training section has an onsets table per method, and report.html an onsets
section and, on its by-step chart, one curve per series with the onset of the followed row."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from flow_configs import small_config
from tiny_checkpoints import series_copy, tiny_training  # noqa: F401  (session fixture)

from codeprobe.onsets import RULE
from codeprobe.pipeline.config import parse_config
from codeprobe.pipeline.experiment import run_experiment
from codeprobe.pipeline.registry import method
from codeprobe.pipeline.report.html import write_report_html

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "viz"))
from browser import console_problems, open_browser, wait_ready  # noqa: E402

DATA = "python-python_small"  # <language>-<dataset> of the python_jsonl fixture


def test_a_series_summary_has_onsets_for_every_method(tiny_training, python_jsonl, tmp_path):  # noqa: F811
    series = series_copy(tiny_training, tmp_path / "mlm", steps=(1, 2, 3))
    # step 3 serves step 2's weights: a duplicate, no point of its own
    shutil.copy(series / "checkpoint-2" / "model.safetensors", series / "checkpoint-3" / "model.safetensors")
    run = tmp_path / "run"
    report = run_experiment(parse_config(small_config(series, python_jsonl, ranks=())), run)

    summary = json.loads((run / "summary.json").read_text())
    results = {r["step"]: r for r in summary["results"]}
    assert sorted(results) == [1, 2]
    assert summary["onset_rule"]["name"] == RULE and "excludes 0" in summary["onset_rule"]["text"]
    by_method: dict[str, list[dict]] = {}
    for record in summary["onsets"]:
        by_method.setdefault(record["method"], []).append(record)
    assert sorted(by_method) == ["astprobe", "cat", "diagnostic", "heads", "structural"]
    for name, records in by_method.items():
        curve = method(name).series
        rows = [row[curve.index] for row in curve.rows(results[1][name])]
        assert [r["index"] for r in records] == sorted(rows), name
        for r in records:
            assert (r["series"], r["model"], r["language"]) == ("mlm", str(series), "python")
            assert (r["rule"], r["index_name"], r["reference_step"]) == (RULE, curve.index_name, 1)
            assert [d["step"] for d in r["differences"]] == [2]  # not step 3, the duplicate
            d = r["differences"][0]
            departs = d["ci"][0] is not None and (d["ci"][0] > 0 or d["ci"][1] < 0)
            assert d["distinguishable"] == departs
            # One later step: an onset there is the last step's departure, with nothing after it.
            expected = (2, "up" if d["ci"][0] > 0 else "down", 0) if departs else (None, None, None)
            assert (r["step"], r["direction"], r["steps_after"]) == expected

    # The differences are of the scores the summary reports: CAT's per-sample scores and
    # AST-Probe's per-snippet F1 average to them (the same snippets scored at both steps).
    for r in by_method["cat"]:
        score = {s: next(x["score"] for x in results[s]["cat"]["layers"] if x["layer"] == r["index"]) for s in (1, 2)}
        assert r["differences"][0]["mean"] == pytest.approx(score[2] - score[1], abs=1e-5)
    for r in by_method["astprobe"]:
        f1 = {
            s: next(x["f1"] for x in results[s]["astprobe"]["hidden_states"] if x["hidden_state"] == r["index"])
            for s in (1, 2)
        }
        assert r["differences"][0]["mean"] == pytest.approx(f1[2] - f1[1], abs=1e-5)
        assert r["differences"][0]["n"] == results[1]["astprobe"]["splits"]["test"]
    for step in (1, 2):
        hits = np.load(run / "heads" / "mlm" / f"step-{step}" / DATA / "test_snippets.npz")
        assert set(hits.files) == {"sample_ids", "names", "ks", "scorable", "hits"}

    # The report: an onsets table per method under its series table, the rule stated once.
    text = report.read_text()
    assert f"Onsets (rule `{RULE}`): " in text
    for name in ("cat", "astprobe", "heads"):
        curve = method(name).series
        assert f"Onsets of the {curve.title} (`{RULE}`, against step 1" in text
        assert f"| {curve.index_name} | onset step | direction | at the onset: score - step 1 | later steps " in text
    for r in summary["onsets"]:
        assert f"| {r['index']} | {'none' if r['step'] is None else r['step']} | {r['direction'] or ''} |" in text

    # report.html: the onsets section, a row per record with its onset.
    page = run / "report.html"
    assert "Onsets over training" in page.read_text()
    with open_browser() as driver:
        driver.get(page.as_uri())
        wait_ready(driver)
        assert console_problems(driver) == []
        section = driver.find_element("css selector", "section#onsets")
        for name, records in by_method.items():
            table = section.find_element("css selector", f'[data-testid="onsets-{name}"]')
            shown = [
                (tr.get_attribute("data-index"), tr.get_attribute("data-onset"))
                for tr in table.find_elements("css selector", "tr[data-index]")
            ]
            assert shown == [(str(r["index"]), "none" if r["step"] is None else str(r["step"])) for r in records]
        assert driver.find_element("css selector", 'nav a[href="#onsets"]').text == "Onsets over training"
        by_step = "#curves .chart[data-chart='By checkpoint step']"
        curves = driver.find_elements("css selector", f"{by_step} g[data-series]")
        assert len(curves) == 2  # the series' best CAT-score and AST-Probe F1, each one curve over its steps

        # The chart marks the onset of the rows it follows at the last step (here made up: the
        # tiny checkpoints barely differ).
        best = max(results[2]["cat"]["layers"], key=lambda x: x["score"])["layer"]
        for r in summary["onsets"]:
            made_up = (r["method"], r["index"]) == ("cat", best)
            r.update(
                step=2 if made_up else None, direction="up" if made_up else None, steps_after=0 if made_up else None
            )
        (run / "summary.json").write_text(json.dumps(summary))
        write_report_html(run)
        driver.get(page.as_uri())
        wait_ready(driver)
        (line,) = driver.find_elements("css selector", f"{by_step} line[data-onset]")
        assert line.get_attribute("data-onset") == "2"
        assert f"onset: CAT layer {best} \u25b2" in driver.find_element("css selector", by_step).text
        assert console_problems(driver) == []

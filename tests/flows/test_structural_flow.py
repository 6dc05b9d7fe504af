"""The structural probes as a method of a run, on a tiny random-weight model: the summary
section with finite scores, selection on validation, every baseline paired; the token trees
aligned with AST-Probe's cached tokens; no forward pass of their own; a rerun recomputes nothing;
the method off leaves no section."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from astprobe.tiny_model import tiny_model_dir  # noqa: F401  (session fixture)
from flow_configs import small_config, step_outputs

from codeprobe.pipeline.config import parse_config
from codeprobe.pipeline.data import read_snippets, read_splits
from codeprobe.pipeline.experiment import run_experiment
from codeprobe.pipeline.methods.structural.steps import split_trees, stacked_vectors
from codeprobe.pipeline.registry import method
from codeprobe.pipeline.runfolder import ResultFolder


@pytest.fixture(scope="module")
def structural_run(tiny_model_dir, python_jsonl, tmp_path_factory):  # noqa: F811
    run = tmp_path_factory.mktemp("structural") / "run"
    cfg = parse_config(
        small_config(
            tiny_model_dir, python_jsonl, structural={"max_epochs": 3, "rank": 8, "random_weights": "all"}, heads=None
        )
    )
    run_experiment(cfg, run)
    return run, cfg


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def test_the_summary_holds_every_probe_with_its_baselines(structural_run):
    run, _ = structural_run
    (result,) = json.loads((run / "summary.json").read_text())["results"]
    s = result["structural"]
    assert s["selection"] == "validation" and s["rank"] == 8 and s["seconds"]["total"] > 0
    for kind, (first, second) in (("distance", ("uuas", "dspr")), ("depth", ("nspr", "root_accuracy"))):
        p = s["probes"][kind]
        rows = {r["hidden_state"]: r for r in p["hidden_states"]}
        assert sorted(rows) == [0, 1, 2]
        valid = {h: r[f"valid_{first}"] for h, r in rows.items()}
        assert p["best_hidden_state"] == max(sorted(valid), key=lambda h: valid[h])  # never the test split
        for h, r in rows.items():
            for metric in (first, second):
                lo, hi = r[f"{metric}_ci"]
                assert _finite(r[metric]) and lo <= r[metric] <= hi
            assert r["minus_linear"][first]["ci"][0] <= r["minus_linear"][first]["mean"]
            assert ("minus_embedding" in r) == (h != 0)
            assert "minus_random_weights" in r  # random weights at every hidden state (config)
            assert ("selectivity" in r) == (h == p["best_hidden_state"])  # the control at the best one
        b = p["baselines"]
        assert _finite(b["linear"][first]) and b["embedding"]["hidden_state"] == 0
        assert [r["hidden_state"] for r in b["random"]] == [0, 1, 2]
        (control,) = b["control"]
        best = rows[p["best_hidden_state"]]
        assert best["selectivity"][first]["mean"] == pytest.approx(best[first] - control[first], abs=1e-5)
    distance = s["probes"]["distance"]["hidden_states"]
    assert all(0 <= r["uuas"] <= 1 and 0 <= r["uuas_corpus"] <= 1 for r in distance)
    report = (run / "report.md").read_text()
    assert "## Structural probes" in report and "selectivity" in report
    assert (run / "plots" / "structural_distance_by_hidden_state.png").exists()
    assert "Structural probes" in (run / "report.html").read_text()


def test_the_token_trees_are_the_cached_tokens_and_no_pass_of_their_own(structural_run):
    """The trees are built over the very tokens AST-Probe's cache pooled the hidden states onto,
    and the structural steps found that cache (the same directories, nothing computed again)."""
    from codeprobe.probes.astprobe.data import prepare_split
    from codeprobe.syntax import parse

    run, cfg = structural_run
    (task,) = run.glob("structural/*/*/task.json")
    (swept,) = run.glob("astprobe/*/*/hidden_states.json")
    assert json.loads(task.read_text())["splits"] == json.loads(swept.read_text())["splits"]
    caches = [p for p in (run / "cache" / "hidden_states").iterdir() if p.is_dir()]
    assert len(caches) == 6  # train, valid, test x pretrained, random weights: AST-Probe's, shared
    # each written before AST-Probe's last step finished, none built again by the structural steps
    swept_at = max(p.stat().st_mtime_ns for p in run.glob("astprobe/*/*/*.json"))
    assert all((p / "meta.json").stat().st_mtime_ns < swept_at for p in caches)
    (data_dir,) = run.glob("data/*")
    splits, by_id = read_splits(data_dir), {s.id: s for s in read_snippets(data_dir)}
    from codeprobe.model import Extractor
    from codeprobe.pipeline.steps import loaded_model

    extractor = Extractor(loaded_model(cfg.models[0], None), attention=False, hidden_states=True, length_policy="skip")
    split = prepare_split(
        [by_id[i] for i in splits["test"]],
        "python",
        extractor,
        run / "cache" / "hidden_states",
        hidden_states=[0, 1, 2],
    )
    trees = split_trees(split)
    vectors = stacked_vectors(split, [0, 2])
    for snippet_id, tree, x, t in zip(split.ids, trees, vectors, split.tuples):
        assert x.shape[:2] == (2, len(tree))
        assert tree.tokens.texts == t.tokens.texts and np.array_equal(tree.tokens.start_byte, t.tokens.start_byte)
        gold = parse(by_id[snippet_id].code, "python").token_tree(collapse_strings=True)
        assert np.array_equal(tree.heads, gold.heads)  # the library's tree of the snippet
    assert sorted(p for p in (run / "cache" / "hidden_states").iterdir() if p.is_dir()) == sorted(caches)


def test_a_rerun_recomputes_nothing(structural_run):
    run, cfg = structural_run
    before = step_outputs(run)
    assert any("structural" in p for p in before)
    run_experiment(cfg, run)
    assert step_outputs(run) == before


def test_per_snippet_scores_average_to_the_section(structural_run):
    run, _ = structural_run
    (result,) = json.loads((run / "summary.json").read_text())["results"]
    folder = ResultFolder(next(run.glob("structural/*/*")))
    scores = method("structural").per_snippet(folder, result["structural"])
    rows = {r["hidden_state"]: r for r in result["structural"]["probes"]["distance"]["hidden_states"]}
    assert scores.indices == (0, 1, 2)
    for k, h in enumerate(scores.indices):
        assert np.nanmean(scores.values[:, k]) == pytest.approx(rows[h]["uuas"])


def test_the_method_off_leaves_no_section(tiny_model_dir, python_jsonl, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    cfg = parse_config(small_config(tiny_model_dir, python_jsonl, structural=None, heads=None, cat=None, ranks=()))
    run_experiment(cfg, run)
    (result,) = json.loads((run / "summary.json").read_text())["results"]
    assert "structural" not in result or result["structural"] is None
    assert not (run / "structural").exists() and "Structural probes" not in (run / "report.md").read_text()


def test_the_html_report_shows_the_curves_and_tables(structural_run):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "viz"))
    from browser import console_problems, open_browser, wait_ready

    run, _ = structural_run
    (result,) = json.loads((run / "summary.json").read_text())["results"]
    with open_browser() as driver:
        driver.get((run / "report.html").resolve().as_uri())
        wait_ready(driver)
        assert console_problems(driver) == []
        assert "Structural probes" in [a.text for a in driver.find_elements("css selector", "nav a")]
        charts = {c.get_attribute("data-chart") for c in driver.find_elements("css selector", "#structural .chart")}
        assert charts == {
            "Structural distance probe: UUAS by hidden state",
            "Structural depth probe: NSpr by hidden state",
        }
        for kind in ("distance", "depth"):
            rows = driver.find_elements("css selector", f"[data-testid=structural-{kind}] tr")
            assert len(rows) == 1 + len(result["structural"]["probes"][kind]["hidden_states"])
            best = result["structural"]["probes"][kind]["best_hidden_state"]
            assert any(r.text.startswith(f"{best} \u2605") for r in rows)

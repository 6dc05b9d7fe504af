"""Attention-head relations in a run: scored inside CAT-probing's forward pass, equal to a pass
of their own, chosen on validation and reported on test with every baseline, in summary.json
and the report; resumed, not recomputed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astprobe.tiny_model import tiny_model_dir  # noqa: F401  (session fixture)
from flow_configs import small_config, step_outputs

from codeprobe.pipeline.config import parse_config
from codeprobe.pipeline.experiment import run_experiment
from codeprobe.pipeline.methods.heads.reader import load_shards


@pytest.fixture(scope="module")
def heads_run(tiny_model_dir, python_jsonl, tmp_path_factory):  # noqa: F811
    run = tmp_path_factory.mktemp("heads") / "run"
    cfg = parse_config(small_config(tiny_model_dir, python_jsonl, astprobe=False))
    run_experiment(cfg, run)
    return run, cfg


def _folder(run):
    (folder,) = run.glob("heads/*/*")
    return folder


def test_heads_are_chosen_on_validation_and_reported_on_test_with_every_baseline(heads_run):
    run, cfg = heads_run
    (result,) = json.loads((run / "summary.json").read_text())["results"]
    heads = result["heads"]
    assert heads["settings"]["selection"].startswith("best head and baselines per relation on validation")
    head_dep, dep_head = heads["scores"]
    assert (head_dep["direction"], head_dep["dependent"]) == ("head->dep", "first")
    assert dep_head["direction"] == "dep->head"
    assert head_dep["relations"], "no relation was scored"
    rows = json.loads((_folder(run) / "summary.json").read_text())
    counts = {r["name"]: r["edges"] for r in rows["relations"]}
    assert all(c >= 5 for c in counts.values()) and all(c < 5 for c in rows["rare_relations"].values())
    for r in head_dep["relations"]:
        assert set(r["k"]) == {"1", "3", "10"}
        first = r["k"]["1"]
        assert set(first["baselines"]) == {"offset", "offset+keyword", "random", "random weights"}
        assert first["best_baseline"] in first["baselines"]
        test = first["test"]
        if test["ci"][0] is not None:
            assert test["ci"][0] <= test["mean"] <= test["ci"][1]
        assert len(r["by_layer"]) == 2  # the tiny model's layers
    h = heads["headline"]
    with_test = [r for r in head_dep["relations"] if r["k"]["1"]["test"]["mean"] is not None]
    assert h["direction"] == "head->dep" and h["k"] == 1 and h["n_relations"] == len(with_test)
    inputs = heads["inputs"]
    assert inputs["used"] + sum(inputs["dropped"].values()) == inputs["snippets"] == 24
    report = (run / "report.md").read_text()
    assert "## Attention-head relations" in report and "beats every baseline" in report
    assert (run / "plots" / "heads_by_layer-0.png").exists()


def test_scores_from_the_shared_pass_equal_a_pass_of_their_own(heads_run, tiny_model_dir, python_jsonl, tmp_path):  # noqa: F811
    run, cfg = heads_run
    own = tmp_path / "own"
    run_experiment(parse_config(small_config(tiny_model_dir, python_jsonl, astprobe=False, cat=False)), own)
    shared = sorted(_folder(run).glob("shard-*.npz"))
    alone = sorted(_folder(own).glob("shard-*.npz"))
    assert [p.name for p in shared] == [p.name for p in alone] and len(shared) == 3
    a, b = load_shards(shared), load_shards(alone)
    assert a.names == b.names and a.scores.sample_ids == b.scores.sample_ids and a.skipped == b.skipped
    ta, tb = a.scores.tables(), b.scores.tables()
    for name in ta:
        if ta[name].dtype.kind == "f":
            np.testing.assert_allclose(ta[name], tb[name], rtol=1e-6, atol=1e-9, err_msg=name)
        else:
            np.testing.assert_array_equal(ta[name], tb[name], err_msg=name)
    # The same shard key, whichever pass wrote it.
    for p, q in zip(shared, alone):
        assert np.load(p)["_key"] == np.load(q)["_key"]


def test_a_rerun_recomputes_nothing(heads_run):
    run, cfg = heads_run
    before = step_outputs(run)
    assert any("/heads/" in p for p in before)
    run_experiment(cfg, run)
    assert step_outputs(run) == before

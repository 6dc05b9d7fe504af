"""Attention-head relations in a run: scored inside CAT-probing's forward pass, equal to a pass
of their own, chosen on validation and reported on test with every baseline, in summary.json,
the report and the snippet explorer; resumed, not recomputed."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astprobe.tiny_model import tiny_model_dir  # noqa: F401  (session fixture)
from flow_configs import small_config, step_outputs

from codeprobe.pipeline.config import parse_config
from codeprobe.pipeline.experiment import run_experiment
from codeprobe.pipeline.explorer import explorer_jobs
from codeprobe.pipeline.methods.heads.reader import load_shards
from codeprobe.pipeline.runfolder import RunFolder


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
    # The shared run's heads shards were written by CAT-probing's pass (before its reduce), and
    # CAT's own shards are CAT's.
    cat_summary = next(run.glob("cat/*/*/summary.json"))
    assert all(p.stat().st_mtime_ns < cat_summary.stat().st_mtime_ns for p in shared)
    assert all("setting_types" in np.load(p) for p in run.glob("cat/*/*/shard-*.npz"))
    # The same shard key, whichever pass wrote it.
    for p, q in zip(shared, alone):
        assert np.load(p)["_key"] == np.load(q)["_key"]
    # Heads alone are something to explore: the explorer reads the snippets for them.
    (explorer,) = own.glob("explorer/*/*.json")
    payload = json.loads(explorer.read_text())
    assert payload["heads"]["relations"] and not payload["heads"]["shared_pass"]
    assert all("cat" not in s and s["heads"]["tokens"]["text"] for s in payload["snippets"])


def test_the_explorer_shows_the_chosen_heads_on_each_snippets_edges(heads_run, tiny_model_dir, tmp_path):  # noqa: F811
    from codeprobe.model import load_model
    from codeprobe.probes.cat import CATProbe

    run, cfg = heads_run
    summary = json.loads((run / "summary.json").read_text())
    (result,) = summary["results"]
    section = result["heads"]
    k = section["headline"]["k"]
    (path,) = run.glob("explorer/*/*.json")
    payload = json.loads(path.read_text())
    info = payload["heads"]
    assert info["k"] == k and info["shared_pass"] and not info["causal"]  # CAT's pass, read once
    # Per shown direction, the relations the run scored with the head it chose at the headline's k.
    for i, block in enumerate(section["scores"]):
        assert info["scores"][i] == {"direction": block["direction"], "dependent": block["dependent"]}
        want = {
            r["relation"]: (r["k"][str(k)]["layer"], r["k"][str(k)]["head"], r["k"][str(k)]["test"]["mean"])
            for r in block["relations"]
        }
        got = {
            r["name"]: (r["heads"][i]["layer"], r["heads"][i]["head"], r["heads"][i]["test"]) for r in info["relations"]
        }
        assert got == want
    # The rows are the model's per-head token attention, as a fresh pass gives it.
    probe = CATProbe(types="all", per_head=True, max_subwords=cfg.heads.max_subwords)
    model = load_model(str(tiny_model_dir), device="cpu")
    items = [(s["id"], s["code"]) for s in payload["snippets"]]
    fresh = {x.sample.sample_id: np.asarray(x.sample.attention) for x in probe.inputs(items, model, "python")}
    n_rows = 0
    for sn in payload["snippets"]:
        assert "cat" in sn and len(sn["heads"]["edges"]) > 0
        for layer, head, at, weights, _ in sn["heads"]["rows"]:
            np.testing.assert_allclose(weights, fresh[sn["id"]][layer, head, at], atol=0.5e-4 + 1e-9)
            n_rows += 1
    assert n_rows > 10
    assert '"shared_pass":true' in (run / "report.html").read_text()  # the report carries them

    # The step's key follows the heads results; without heads the job is as before.
    folder = RunFolder(run)
    (job,) = explorer_jobs(folder, cfg, summary)
    assert job.heads is not None and job.heads.k == k and job.heads_summary
    off = parse_config({**cfg.to_dict(), "heads": None})
    (plain,) = explorer_jobs(folder, off, summary)
    assert plain.heads is None and plain.heads_summary is None and plain.key(off) != job.key(cfg)
    copy = tmp_path / "summary.json"
    copy.write_text(Path(job.heads_summary).read_text())
    moved = replace(job, heads_summary=str(copy))
    assert moved.key(cfg) == job.key(cfg)
    copy.write_text(json.dumps({**json.loads(copy.read_text()), "_key": "rescored"}))
    assert moved.key(cfg) != job.key(cfg)


def test_a_rerun_recomputes_nothing(heads_run):
    run, cfg = heads_run
    before = step_outputs(run)
    assert any("/heads/" in p for p in before)
    run_experiment(cfg, run)
    assert step_outputs(run) == before

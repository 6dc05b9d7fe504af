"""The experiment runner without Prefect: validation-only selection, intervals in the summary,
caches keyed on everything that shapes them, one hidden-state cache shared by two processes, and the
CLI and the flow giving the same numbers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from astprobe.tiny_model import tiny_model_dir  # noqa: F401  (session fixture)
from click.testing import CliRunner
from flow_configs import small_config, step_outputs

from codeprobe import provenance
from codeprobe.pipeline.config import parse_config
from codeprobe.pipeline.experiment import run_experiment


@pytest.fixture(scope="module")
def finished_run(tiny_model_dir, python_jsonl, tmp_path_factory):  # noqa: F811
    run = tmp_path_factory.mktemp("experiment") / "run"
    cfg = parse_config(small_config(tiny_model_dir, python_jsonl, probe_seeds=2))
    run_experiment(cfg, run)
    return run, cfg


def test_summary_selects_on_validation_and_carries_intervals(finished_run):
    run, _ = finished_run
    summary = json.loads((run / "summary.json").read_text())
    assert summary["versions"]["python"] and summary["versions"]["codeprobe_source"]
    (result,) = summary["results"]
    ast = result["astprobe"]
    assert ast["selection"] == "validation"
    valid = {p["hidden_state"]: p["valid_f1"] for p in ast["hidden_states"]}
    assert ast["best_hidden_state"] == max(sorted(valid), key=lambda k: valid[k])  # never the test F1
    for p in ast["hidden_states"]:
        lo, hi = p["f1_ci"]
        assert lo <= p["f1"] <= hi and p["seeds"] == 2 and "f1_seed_std" in p
        assert {"acc_c", "acc_u", "d_pairs", "best_epoch", "hit_max_epochs"} <= set(p)
    assert "minus_embedding" in ast["hidden_states"][1] and "minus_random_weights" in ast["hidden_states"][1]
    assert ast["ranks"]["selection"] == "validation" and ast["ranks"]["best_rank"] in (16, 32)
    # each rank once, with its two seeds (the layer sweep's rank is not trained again)
    assert [(p["rank"], p["seeds"]) for p in ast["ranks"]["points"]] == [(16, 2), (32, 2)]
    assert ast["training"]["lr"] == 1e-3 and ast["training"]["max_epochs"] == 2
    for row in result["cat"]["layers"]:
        for name in ("score", "random_baseline", "positional_baseline"):
            lo, hi = row[f"{name}_ci"]
            assert lo <= row[name] <= hi
        diff = row["minus_positional"]
        assert diff["ci"][0] <= diff["mean"] <= diff["ci"][1]
        assert diff["mean"] == pytest.approx(row["score"] - row["positional_baseline"], abs=1e-9)
    report = (run / "report.md").read_text()
    assert "chosen on the validation split" in report and "95% percentile bootstrap" in report


def test_a_change_of_code_recomputes_and_nothing_else_does(finished_run, monkeypatch):
    run, cfg = finished_run
    before = step_outputs(run)
    run_experiment(cfg, run)
    assert step_outputs(run) == before  # same code, data, model and versions: nothing recomputed

    changed = {**provenance.environment(), "codeprobe_source": "a different source"}
    monkeypatch.setattr(provenance, "environment", lambda: changed)
    summary_before = json.loads((run / "summary.json").read_text())["results"]
    run_experiment(cfg, run)
    after = step_outputs(run)
    assert all(after[p] != t for p, t in before.items()), "every step must be redone"
    # ... and gives the same numbers (everything is seeded).
    summary_after = json.loads((run / "summary.json").read_text())["results"]
    assert _scores(summary_after) == _scores(summary_before)


def test_a_dataset_edited_in_place_is_read_again(tiny_model_dir, python_jsonl, tmp_path):  # noqa: F811
    data = tmp_path / "data.jsonl"
    data.write_bytes(python_jsonl.read_bytes())
    run = tmp_path / "run"
    cfg = parse_config(small_config(tiny_model_dir, data, astprobe=False))
    run_experiment(cfg, run)
    rows = data.read_text().splitlines()
    data.write_text("\n".join(rows[5:]) + "\n")  # five functions fewer
    run_experiment(cfg, run)
    (result,) = json.loads((run / "summary.json").read_text())["results"]
    assert result["data"]["read"] == len(rows) - 5


def test_cli_and_flow_give_equal_numbers(tiny_model_dir, python_jsonl, tmp_path, prefect_server):  # noqa: F811
    from codeprobe.cli import main
    from codeprobe.pipeline.flow import probing_flow

    args = [
        "astprobe",
        "train",
        "--dataset",
        str(python_jsonl),
        "--lang",
        "python",
        "--model",
        str(tiny_model_dir),
        "--hidden-states",
        "0,1,2",
        "--rank",
        "32",
        "--ranks",
        "16",
        "--epochs",
        "2",
        "--n-snippets",
        "24",
        "--batch-size",
        "8",
        "--out",
        str(tmp_path / "cli"),
    ]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    config = small_config(tiny_model_dir, python_jsonl, cat=False, patience=5)
    probing_flow(config=config, out_dir=str(tmp_path / "flow"))
    cli = json.loads((tmp_path / "cli" / "summary.json").read_text())["results"]
    flow = json.loads((tmp_path / "flow" / "summary.json").read_text())["results"]
    assert _scores(cli) == _scores(flow)
    assert cli[0]["astprobe"]["best_hidden_state"] == flow[0]["astprobe"]["best_hidden_state"]


def _scores(results: list[dict]) -> list:
    ast = results[0].get("astprobe") or {}
    cat = results[0].get("cat") or {}
    return [
        (p["hidden_state"], p["rank"], p["f1"], p["valid_f1"], p["f1_ci"]) for p in ast.get("hidden_states", [])
    ] + [(p["layer"], p["score"], p["score_ci"]) for p in cat.get("layers", [])]


_BUILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    from codeprobe.model import Extractor, load_model
    from codeprobe.model import ModelInput
    from codeprobe.probes.astprobe.cache import cached_hidden_states
    from codeprobe.syntax import parse

    model_dir, root, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
    codes = [f"def f{k}(a, b):\\n    return a + b * {k}\\n" for k in range(40)]
    items = []
    for k, code in enumerate(codes):
        tokens = parse(code, "python").tokens()
        items.append(ModelInput.from_tokens(str(k), code, tokens))
    extractor = Extractor(load_model(model_dir, device="cpu"), batch_size=4, attention=False,
                          hidden_states=True, length_policy="skip")
    while time.time() < start:  # both processes start building at the same moment
        time.sleep(0.005)
    cache = cached_hidden_states(root, items, extractor)
    print(cache.path, float(np.asarray(cache.hidden_state(2), np.float64).sum()))
""")


def test_two_processes_share_one_hidden_state_cache(tiny_model_dir, tmp_path):  # noqa: F811
    import time

    script = tmp_path / "build.py"
    script.write_text(_BUILD)
    start = time.time() + 15  # after both interpreters have imported torch
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tiny_model_dir), str(tmp_path / "cache"), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    (path_a, sum_a), (path_b, sum_b) = (out.split() for out, _ in outs)
    assert path_a == path_b and sum_a == sum_b
    caches = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    assert [p.name for p in caches] == [Path(path_a).name]  # no temporary directory left behind
    meta = json.loads((caches[0] / "meta.json").read_text())
    size = (caches[0] / "hidden_state_02.f16").stat().st_size
    assert size == sum(meta["lengths"]) * meta["hidden"] * 2 and np.isfinite(float(sum_a))


def test_astprobe_reuses_the_cat_forward_pass(finished_run):
    """CAT-probing's pass wrote the real model's token hidden states of every snippet it read
    whole; the AST-Probe sweep moved them into its caches instead of running the model (random
    weights: its own), so each hidden state is on disk once."""
    run, _ = finished_run
    (swept,) = run.glob("astprobe/*/*/hidden_states.json")
    (random,) = run.glob("astprobe/*/*/random.json")
    assert not list(run.glob("cat/*/*/shard-*.hidden_states*"))  # moved, temporary copies included
    n_probed = sum(json.loads(swept.read_text())["splits"].values())
    # every snippet but the one over CAT-probing's 256-subword cut (AST-Probe reads it whole)
    assert json.loads(swept.read_text())["hidden_states_reused"] == n_probed - 1
    assert json.loads(random.read_text())["hidden_states_reused"] == 0


def test_model_dtype_is_a_run_setting(tiny_model_dir, python_jsonl, tmp_path):  # noqa: F811
    """`dtype` loads the model in that precision for every step (and is recorded with it); an
    unknown one fails before any work."""
    from codeprobe.errors import InputError

    with pytest.raises(InputError, match="extraction.dtype"):  # a ConfigError, read before any work
        run_experiment(parse_config(small_config(tiny_model_dir, python_jsonl, dtype="float64")), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    cfg = parse_config(
        small_config(tiny_model_dir, python_jsonl, dtype="bfloat16", astprobe=False, n_snippets=8, explorer_snippets=0)
    )
    run_experiment(cfg, tmp_path / "bf16")
    (summary,) = (tmp_path / "bf16").glob("cat/*/*/summary.json")
    assert json.loads(summary.read_text())["model"]["dtype"] == "bfloat16"

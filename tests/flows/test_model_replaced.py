"""A local model replaced in place (other weights under the same file names, a sharded one
here) is probed again on the next run into the same folder, in the same process, and gives
other numbers: every step's key holds the model's fingerprint over all its files."""

from __future__ import annotations

import json
from pathlib import Path

from sharded_model import sharded_bert

from codeprobe.pipeline import experiment
from codeprobe.pipeline.runfolder import recorded_key

ASTPROBE = ("f1", "d_pairs", "acc_c", "acc_u")  # a tiny probe's F1 alone can be 0 for both models


def step_outputs(run: Path) -> dict[str, tuple[int, str | None]]:
    """(mtime, recorded key) of every output of the model's steps."""
    files = [
        p
        for method in ("cat", "astprobe")
        for p in (run / method).rglob("*")
        if p.is_file() and p.suffix in (".npz", ".json")
    ]
    return {str(p.relative_to(run)): (p.stat().st_mtime_ns, recorded_key(p)) for p in files}


def numbers(run: Path) -> dict[str, list]:
    (result,) = json.loads((run / "summary.json").read_text())["results"]
    return {
        "cat": [row["score"] for row in result["cat"]["layers"]],
        "astprobe": [[p[k] for k in ASTPROBE] for p in result["astprobe"]["hidden_states"]],
        "random weights": [[p[k] for k in ASTPROBE] for p in result["astprobe"]["baselines"]["random"]],
        "fingerprint": [result["model_info"]["fingerprint"]],
    }


def test_a_model_replaced_in_place_is_probed_again(python_jsonl, tmp_path):
    model = sharded_bert(tmp_path / "model", seed=0)
    names = sorted(p.name for p in model.iterdir())
    assert "model.safetensors.index.json" in names and "model.safetensors" not in names
    config = {
        "models": [str(model)],
        "languages": ["python"],
        "datasets": [str(python_jsonl)],
        "n_snippets": 24,
        "shard_size": 8,
        "layers": [1, 2],
        "ranks": [],
        "rank": 32,
        "max_epochs": 2,
        "patience": 1,
        "batch_size": 8,
        "explorer_snippets": 0,
    }
    run = tmp_path / "run"

    experiment.run(config, run)
    first, before = numbers(run), step_outputs(run)
    data = {p: p.stat().st_mtime_ns for p in (run / "data").rglob("*") if p.is_file()}
    assert before and any(k.startswith("cat/") for k in before) and any(k.startswith("astprobe/") for k in before)
    experiment.run(config, run)  # unchanged: nothing is redone
    assert step_outputs(run) == before

    sharded_bert(model, seed=1)  # other random weights, the same file names
    assert sorted(p.name for p in model.iterdir()) == names
    experiment.run(config, run)
    second, after = numbers(run), step_outputs(run)

    assert set(after) >= set(before) and sum(key is not None for _, key in before.values()) >= 4
    for path, (mtime, key) in before.items():  # every step's output written again, with a new key
        assert after[path][0] != mtime and (key is None or after[path][1] != key), f"{path} was not recomputed"
    assert {p: p.stat().st_mtime_ns for p in (run / "data").rglob("*") if p.is_file()} == data
    for name in first:
        assert first[name] != second[name], f"{name}: the same numbers after the weights changed"

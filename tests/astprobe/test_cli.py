"""`codeprobe astprobe train` and `recover` on a tiny model and a small JSON-lines dataset."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from shared_data import cosqa_functions
from tiny_model import one_thread, tiny_model_dir  # noqa: F401  (fixtures)

from codeprobe.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_train_then_recover(tiny_model_dir, tmp_path):
    data = tmp_path / "functions.jsonl"
    data.write_text("".join(json.dumps({"id": i, "code": c}) + "\n" for i, c in cosqa_functions()[:70]))
    out = tmp_path / "run"
    runner = CliRunner()
    args = [
        "astprobe",
        "train",
        "--dataset",
        str(data),
        "--lang",
        "python",
        "--model",
        str(tiny_model_dir),
        "--hidden-states",
        "1,2",
        "--rank",
        "8",
        "--ranks",
        "4",
        "--out",
        str(out),
        "--epochs",
        "2",
    ]
    result = runner.invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (res,) = json.loads((out / "summary.json").read_text())["results"]
    summary = res["astprobe"]
    assert [row["hidden_state"] for row in summary["hidden_states"]] == [1, 2]
    for row in summary["hidden_states"] + summary["baselines"]["random"] + [summary["baselines"]["embedding"]]:
        assert {"hidden_state", "precision", "recall", "f1", "valid_f1", "f1_ci"} <= set(row) and 0 <= row["f1"] <= 1
    assert summary["baselines"]["embedding"]["hidden_state"] == 0
    assert [row["hidden_state"] for row in summary["baselines"]["random"]] == [1, 2]
    assert summary["selection"] == "validation"
    assert "heads" not in res and not (out / "heads").exists()  # AST-Probe only: no other method ran
    assert (out / "plots" / "astprobe_by_hidden_state.png").exists() and (out / "report.md").exists()
    assert summary["ranks"]["hidden_state"] == summary["best_hidden_state"]
    assert [row["rank"] for row in summary["ranks"]["points"]] == [4, 8]
    assert "best on validation" in result.output

    snippet = tmp_path / "maximum.py"
    snippet.write_text("def maximum(a, b):\n    if a > b:\n        return a\n    return b\n")
    (probe,) = out.glob("astprobe/*/*/probes/hidden_state_02_rank_008")
    shown = runner.invoke(
        main,
        ["astprobe", "recover", str(snippet), "--probe", str(probe), "--cache-dir", str(tmp_path / "cache")],
        catch_exceptions=False,
    )
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("gold") and "recovered (hidden state 2, rank 8)" in shown.output
    assert "function_definition" in shown.output and "F1 " in shown.output.splitlines()[-1]

    as_json = runner.invoke(
        main,
        ["astprobe", "recover", str(snippet), "--probe", str(probe), "--json", "--cache-dir", str(tmp_path / "cache")],
    )
    obj = json.loads(as_json.output)
    assert len(obj["tokens"]) == 17 and len(obj["d"]) == 16 and obj["hidden_state"] == 2

    wrong = runner.invoke(main, ["astprobe", "recover", str(snippet), "--probe", str(probe), "--lang", "java"])
    assert wrong.exit_code == 2 and "for python" in wrong.output


def test_train_rejects_a_hidden_state_the_model_lacks(tiny_model_dir, tmp_path):
    """Through the option's old name, `--layers`, which still works (hidden from the help)."""
    data = tmp_path / "f.jsonl"
    data.write_text("".join(json.dumps({"id": i, "code": c}) + "\n" for i, c in cosqa_functions()[:30]))
    result = CliRunner().invoke(
        main,
        [
            "astprobe",
            "train",
            "--dataset",
            str(data),
            "--lang",
            "python",
            "--model",
            str(tiny_model_dir),
            "--layers",
            "5",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2 and "do not exist" in result.output


def test_train_names_hidden_states_not_layers():
    runner = CliRunner()
    shown = runner.invoke(main, ["astprobe", "train", "--help"])
    assert shown.exit_code == 0 and "--hidden-states" in shown.output and "--layers" not in shown.output
    both = runner.invoke(
        main,
        [
            "astprobe",
            "train",
            "--dataset",
            "d",
            "--lang",
            "python",
            "--out",
            "o",
            "--hidden-states",
            "1",
            "--layers",
            "2",
        ],
    )
    assert both.exit_code == 2 and "--layers" in both.output

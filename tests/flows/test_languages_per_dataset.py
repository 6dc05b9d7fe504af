"""A run over datasets of different languages: each dataset is read in each language it has a
usable snippet in, so a Python dataset and a JavaScript folder share one run; the pairs left out
are recorded with their reasons, and a language no dataset has fails before any work."""

from __future__ import annotations

import json

import pytest
from astprobe.tiny_model import tiny_model_dir  # noqa: F401  (session fixture)
from flow_configs import small_config

from codeprobe.errors import DatasetError
from codeprobe.pipeline.config import parse_config
from codeprobe.pipeline.experiment import data_plan, run_experiment


@pytest.fixture
def js_dir(tmp_path):
    folder = tmp_path / "js"
    folder.mkdir()
    for f in range(4):  # functions of one file stay in one split: 4 files leave the test split empty
        (folder / f"lib{f}.js").write_text(
            "".join(
                f"function clamp{f}_{i}(value, low, high) {{\n"
                f"  if (value < low) {{ return low + {i}; }}\n"
                f"  const scaled = value * {i} - high;\n"
                "  return scaled > high ? high : scaled;\n}\n\n"
                for i in range(8)
            )
        )
    return folder


def test_each_dataset_is_read_in_the_languages_it_has(tiny_model_dir, python_jsonl, js_dir, tmp_path):  # noqa: F811
    cfg = parse_config(
        small_config(tiny_model_dir, python_jsonl, languages=("python", "javascript"), astprobe=False, heads=False)
    )
    cfg = cfg.model_copy(update={"datasets": (str(python_jsonl), str(js_dir))})
    plan = data_plan(cfg)
    assert plan.pairs == (("python", str(python_jsonl)), ("javascript", str(js_dir)))
    assert [(lang, d) for lang, d, _ in plan.skipped] == [("javascript", str(python_jsonl)), ("python", str(js_dir))]
    assert all("no usable" in reason for _, _, reason in plan.skipped)

    run = tmp_path / "run"
    run_experiment(cfg, run)
    summary = json.loads((run / "summary.json").read_text())
    got = [(r["language"], r["dataset"], r["data"]["kept"]) for r in summary["results"]]
    assert got == [("python", str(python_jsonl), 24), ("javascript", str(js_dir), 24)]
    assert all(r["cat"]["layers"] for r in summary["results"])
    assert [(r["language"], r["dataset"]) for r in summary["not_read"]] == [
        ("javascript", str(python_jsonl)),
        ("python", str(js_dir)),
    ]
    assert f"Not read: {python_jsonl} in javascript (" in (run / "report.md").read_text()
    # 4 source files split by file leave the JavaScript test split empty: no explorer sample, and
    # the run finishes (it used to fail at the end, in the explorer, after all the work).
    assert json.loads((run / "data" / "javascript-js" / "splits.json").read_text())["test"] == []
    assert [p.name for p in run.glob("explorer/*/*.json")] == ["python-python_small.json"]


def test_a_language_no_dataset_has_fails_before_any_work(tiny_model_dir, python_jsonl, tmp_path):  # noqa: F811
    cfg = parse_config(small_config(tiny_model_dir, python_jsonl, languages=("python", "javascript")))
    with pytest.raises(DatasetError, match="no dataset has a usable javascript snippet"):
        data_plan(cfg)
    with pytest.raises(DatasetError, match="no usable"):
        run_experiment(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()

"""Runs written by an older codeprobe still report: `data/schema1-run/` is a real run of commit
507548e (summary schema 1: AST-Probe rows by `layer`, a flat config), made with its library entry
point `codeprobe.pipeline.experiment.run` on the packaged MiniLM:

    {"models": ["default"], "n_snippets": 100, "shard_size": 50, "layers": [0, 1, 2],
     "ranks": [16], "rank": 32, "max_epochs": 20, "patience": 3, "batch_size": 8,
     "explorer_snippets": 2, "device": "cpu"}

Only its summary.json, config.json and CAT's rates.parquet are kept (the `run` path inside
summary.json is where it was made, under /tmp; reports only print it)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from codeprobe.cli import main
from codeprobe.pipeline.runfolder import RunFolder
from codeprobe.pipeline.summary import SCHEMA_VERSION, read_summary

SCHEMA1_RUN = Path(__file__).resolve().parent / "data" / "schema1-run"


def raw_summary() -> dict:
    return json.loads((SCHEMA1_RUN / "summary.json").read_text())


@pytest.fixture
def old_run(tmp_path) -> Path:
    """A copy of the fixture run, so that nothing is ever written into the repository."""
    return Path(shutil.copytree(SCHEMA1_RUN, tmp_path / "schema1-run"))


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_fixture_is_a_schema1_run():
    raw = raw_summary()
    assert "schema_version" not in raw and "extra" in raw["config"]  # written by the old RunConfig
    (r,) = raw["results"]
    assert "model_name" not in r and {"layers", "best_layer", "vectors_reused"} <= set(r["astprobe"])
    assert not any("hidden_state" in row for row in r["astprobe"]["layers"])


def test_report_of_a_schema1_run(old_run, tmp_path):
    before = contents(old_run)
    out = tmp_path / "report" / "report.md"
    result = CliRunner().invoke(main, ["report", str(old_run), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert out.exists() and out.with_suffix(".html").exists()
    assert contents(old_run) == before  # --out: the run folder is only read
    text = out.read_text()
    assert "(Read from summary schema 1.)" in text

    (r,) = raw_summary()["results"]
    a = r["astprobe"]
    best = next(row for row in a["layers"] if row["layer"] == a["best_layer"])
    assert a["best_layer"] == 2 and best["f1"] == pytest.approx(0.025446)  # the fixture's numbers
    section = text[text.index("## AST-Probe") :]
    assert f"best hidden state on validation: {a['best_layer']}" in section
    assert "| hidden state | valid F1 | test F1 |" in section
    # The best hidden state's row: valid F1, then test F1 with its interval, as the old run had them.
    (row,) = [line for line in section.splitlines() if line.startswith(f"| {a['best_layer']} **best** |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    lo, hi = best["f1_ci"]
    assert cells[1] == f"{best['valid_f1']:.3f}"
    assert cells[2] == f"{best['f1']:.3f} [{lo:.3f}, {hi:.3f}]" == "0.025 [0.010, 0.043]"
    # One table row per hidden state of the old run; the rank sweep at the old best layer.
    rows = [line for line in section.splitlines() if re.match(r"\| \d+( \*\*best\*\*)? \| 0\.", line)]
    assert len(rows) == len(a["layers"]) + len(a["ranks"]["points"])
    assert f"Rank sweep at hidden state {a['ranks']['layer']} (best rank on validation: {a['ranks']['best_rank']})" in (
        section
    )
    for plot in ("cat_by_layer.png", "astprobe_by_hidden_state.png", "astprobe_by_rank.png"):
        assert (out.parent / "plots" / plot).stat().st_size > 1000, plot

    # The page carries the same numbers, by hidden state, and CAT's type rates from rates.parquet.
    html = out.with_suffix(".html").read_text()
    payload = json.loads(
        re.search(r'<script type="application/json" id="codeprobe-data">(.*?)</script>', html).group(1)
    )
    (series,) = payload["series"]
    assert series["model"] == r["model_info"]["name"]
    assert [h["hidden_state"] for h in series["astprobe"]["hidden_states"]] == [row["layer"] for row in a["layers"]]
    assert [h["f1"] for h in series["astprobe"]["hidden_states"]] == [row["f1"] for row in a["layers"]]
    assert series["astprobe"]["best_hidden_state"] == a["best_layer"]
    assert series["cat"]["rates"]["types"] and len(series["cat"]["rates"]["rate"]) == len(r["cat"]["layers"])
    assert any("Read from summary schema 1." in line for line in payload["lines"])


def test_read_summary_upgrades_schema1_names():
    raw = raw_summary()
    summary = read_summary(RunFolder(SCHEMA1_RUN))
    assert summary["schema_read"] == 1 and summary["schema_version"] == SCHEMA_VERSION == 2
    # The flat config, sectioned.
    assert summary["config"]["astprobe"]["hidden_states"] == raw["config"]["layers"] == [0, 1, 2]
    assert summary["config"]["data"]["n_snippets"] == raw["config"]["n_snippets"] == 100
    assert summary["config"]["training"]["max_epochs"] == raw["config"]["max_epochs"]

    def renamed(row: dict) -> dict:
        return {("hidden_state" if k == "layer" else k): v for k, v in row.items()}

    (old,), (new,) = raw["results"], summary["results"]
    assert new["model_name"] == old["model_info"]["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert new["cat"] == old["cat"]  # CAT's `layer` is a transformer layer: unchanged
    a, b = old["astprobe"], new["astprobe"]
    assert b["hidden_states"] == [renamed(row) for row in a["layers"]]
    assert b["best_hidden_state"] == a["best_layer"] == 2
    assert b["hidden_states_reused"] == a["vectors_reused"]
    assert b["baselines"]["embedding"] == renamed(a["baselines"]["embedding"])
    assert b["baselines"]["random"] == [renamed(row) for row in a["baselines"]["random"]]
    assert b["ranks"]["hidden_state"] == a["ranks"]["layer"] and b["ranks"]["best_rank"] == a["ranks"]["best_rank"]
    assert b["ranks"]["points"] == [renamed(row) for row in a["ranks"]["points"]]
    assert not {"layers", "best_layer", "vectors_reused"} & set(b) and "layer" not in b["ranks"]
    untouched = set(a) - {"layers", "best_layer", "vectors_reused", "baselines", "ranks"}
    assert {k: b[k] for k in untouched} == {k: a[k] for k in untouched}

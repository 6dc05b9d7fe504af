"""`codeprobe clean`: a finished run's intermediates go, its results and reports stay, and a
rerun of the same config recomputes nothing; an unfinished run is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from astprobe.tiny_model import tiny_model_dir  # noqa: F401  (session fixture)
from click.testing import CliRunner
from flow_configs import small_config

from codeprobe.cli import main
from codeprobe.pipeline.config import parse_config
from codeprobe.pipeline.experiment import run_experiment


def files(run: Path) -> dict[str, int]:
    return {str(p.relative_to(run)): p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def cleaned_run(tiny_model_dir, python_jsonl, tmp_path_factory):  # noqa: F811
    """A finished run, its files before cleaning, the dry run's output."""
    run = tmp_path_factory.mktemp("clean") / "run"
    cfg = parse_config(small_config(tiny_model_dir, python_jsonl))
    run_experiment(cfg, run)
    before = files(run)
    dry = CliRunner().invoke(main, ["clean", str(run), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert files(run) == before  # a dry run removes nothing
    result = CliRunner().invoke(main, ["clean", str(run)])
    assert result.exit_code == 0, result.output
    return run, cfg, before, dry.output, result.output


def test_clean_removes_the_intermediates_and_keeps_the_results(cleaned_run):
    run, _, before, dry, output = cleaned_run
    removed = set(before) - set(files(run))
    assert any(p.startswith("cache/") for p in removed)
    assert any(Path(p).name.startswith("shard-") for p in removed)
    assert any(Path(p).name.startswith("heads-") for p in removed)
    # nor the integrity records and step locks of what was removed
    assert not [p for p in run.glob("cat/*/*/.*") if p.name.startswith((".shard-", ".heads-"))]
    kept = set(files(run))
    for name in ("config.json", "summary.json", "report.md", "report.html"):
        assert name in kept
    for pattern in ("cat/*/*/summary.json", "cat/*/*/samples.parquet", "astprobe/*/*/hidden_states.json"):
        assert list(run.glob(pattern)), pattern
    assert list(run.glob("astprobe/*/*/probes/*/*")), "the saved probes are results"
    assert output.splitlines()[-1].startswith(f"{dry.count('would remove')} files and folders, freed")
    assert "would free" in dry.splitlines()[-1]


def test_the_reports_read_no_intermediate(cleaned_run):
    """The layer x head table is the reduce's, not read back from the shards."""
    from codeprobe.pipeline.methods.cat.summary import html_view
    from codeprobe.pipeline.runfolder import ResultFolder

    run, *_ = cleaned_run
    (cat_summary,) = run.glob("cat/*/*/summary.json")
    reduced = json.loads(cat_summary.read_text())
    heads = reduced["heads"]
    assert heads["n_heads"] > 1 and len(heads["scores"]) == len({r["layer"] for r in reduced["layers"]})
    assert html_view(ResultFolder(cat_summary.parent), {"layers": []})["heads"] == heads


def test_a_rerun_after_clean_recomputes_nothing(cleaned_run):
    run, cfg, *_ = cleaned_run
    summary = json.loads((run / "summary.json").read_text())
    kept = {p: t for p, t in files(run).items() if not p.startswith(("report", "plots/", "summary.json"))}
    run_experiment(cfg, run)
    after = files(run)
    assert {p: after.get(p) for p in kept} == kept
    assert not set(after) - set(kept) - {p for p in after if p.startswith(("report", "plots/", "summary.json"))}
    rerun = json.loads((run / "summary.json").read_text())
    assert rerun["results"] == summary["results"]


def test_an_unfinished_run_is_not_cleaned(tmp_path):
    (tmp_path / "cache").mkdir()
    result = CliRunner().invoke(main, ["clean", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith("codeprobe: error:")
    assert (tmp_path / "cache").exists()

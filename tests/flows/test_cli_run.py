"""`codeprobe run` reads the example configs and lets `--model` replace their models (a
checkpoint folder, say), so the README's loop needs no edited file."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from codeprobe.cli import main
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.runners import Workers

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_model_option_replaces_the_configs_models(monkeypatch, tmp_path):
    import codeprobe.pipeline.experiment as experiment
    import codeprobe.pipeline.flow as flow
    import codeprobe.pipeline.server as server

    seen = {}

    def main_job(out_dir, config, workers):
        seen.update(out_dir=out_dir, config=config, workers=workers)
        return str(tmp_path / "report.md")

    monkeypatch.setattr(experiment, "check_run", lambda config, out_dir: {})  # no such models here
    monkeypatch.setattr(server, "check_prefect_server", lambda: None)
    monkeypatch.setattr(flow, "main_job", main_job)
    config = EXAMPLES / "probe-checkpoints.json"
    args = ["run", "--config", str(config), "--model", "ckpts/a", "--model", "ckpts/b", "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    expected = RunConfig.read(config)
    assert seen["config"].models == ("ckpts/a", "ckpts/b")
    assert seen["config"].datasets == expected.datasets and seen["config"].data == expected.data
    assert seen["out_dir"] == str(tmp_path / "r")
    assert not seen["workers"].uses_dask

    result = CliRunner().invoke(main, [*args, "--workers", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert seen["workers"] == Workers(n=2) and "2 worker processes" in result.output

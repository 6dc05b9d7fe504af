"""`codeprobe run` without a usable Prefect server stops at once with one line: cause and fix."""

from __future__ import annotations

import os
import subprocess
import sys


def _run(tmp_path, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    code = "from codeprobe.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, "run", "--out", str(tmp_path / "run")],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_prefect_home_in_a_missing_folder(tmp_path):
    home = tmp_path / "missing" / "prefect-home"
    result = _run(tmp_path, PREFECT_HOME=str(home))
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("codeprobe: error: Prefect's temporary server cannot start")
    assert str(home) in last and "PREFECT_HOME" in last and "PREFECT_API_URL" in last
    assert not (tmp_path / "run").exists()


def test_a_server_url_that_does_not_answer(tmp_path):
    result = _run(tmp_path, PREFECT_API_URL="http://127.0.0.1:9/api", PREFECT_HOME=str(tmp_path / "h"))
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert "does not answer" in last and "prefect server start" in last

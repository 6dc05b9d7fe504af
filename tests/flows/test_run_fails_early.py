"""Issue 27, "errors arrive late and buried": what `codeprobe run` can check without a forward
pass (the model, the languages, the datasets, the run folder) it checks before a Prefect server
starts and before the run folder is claimed: one `codeprobe: error:` line, last, exit 2, within
seconds, and the folder untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from astprobe.tiny_model import tiny_model_dir  # noqa: F401  (session fixture)
from flow_configs import small_config
from shared_data import cosqa_functions

SCRIPT = "import sys; from codeprobe.cli import main; sys.exit(main())"


@pytest.fixture(scope="module")
def good_jsonl(tmp_path_factory):
    path = tmp_path_factory.mktemp("early") / "good.jsonl"
    rows = [{"id": ident, "code": code} for ident, code in cosqa_functions()[:12]]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def codeprobe_run(tmp_path, config: dict, out):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    # A server that cannot answer: were the checks after the server's, its error would come first.
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api", "PREFECT_HOME": str(tmp_path / "prefect")}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, "run", "--config", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    return done, time.monotonic() - started


def assert_one_line_error(done, seconds, *words):
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("codeprobe: error:"), done.stderr
    for word in words:
        assert word in last, (word, last)
    output = done.stdout + done.stderr
    assert "Starting temporary server" not in output and "Traceback" not in output, output
    assert "PREFECT_API_URL" not in last  # the run's own mistake, not the server's
    assert seconds < 90, seconds  # seconds on an idle machine; the imports and the model load


def test_a_missing_model(tmp_path, good_jsonl):
    out = tmp_path / "run"
    done, seconds = codeprobe_run(tmp_path, small_config(tmp_path / "no-such-model", good_jsonl), out)
    assert_one_line_error(done, seconds, "no-such-model")
    assert not out.exists()


def test_an_unknown_language(tmp_path, tiny_model_dir, good_jsonl):  # noqa: F811
    out = tmp_path / "run"
    done, seconds = codeprobe_run(tmp_path, small_config(tiny_model_dir, good_jsonl, languages=("klingon",)), out)
    assert_one_line_error(done, seconds, "klingon")
    assert not out.exists()


def test_a_dataset_without_a_usable_row_says_what_it_skipped(tmp_path, tiny_model_dir):  # noqa: F811
    data = tmp_path / "broken.jsonl"
    rows = [{"id": f"p{i}", "code": f"def broken_{i}(:\n    return"} for i in range(3)]
    rows += [{"id": "empty", "code": ""}, {"id": "no-code"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "run"
    done, seconds = codeprobe_run(tmp_path, small_config(tiny_model_dir, data), out)
    assert_one_line_error(done, seconds, "no usable python snippet", "read 5", "parse_error 3")
    assert not out.exists()


def test_a_missing_dataset(tmp_path, tiny_model_dir):  # noqa: F811
    out = tmp_path / "run"
    done, seconds = codeprobe_run(tmp_path, small_config(tiny_model_dir, tmp_path / "missing.jsonl"), out)
    assert_one_line_error(done, seconds, "missing.jsonl")
    assert not out.exists()


def test_a_folder_holding_another_run_is_refused_and_left_alone(tmp_path, tiny_model_dir, good_jsonl):  # noqa: F811
    out = tmp_path / "run"
    out.mkdir()
    other = small_config(tiny_model_dir, good_jsonl, n_snippets=10)
    (out / "config.json").write_text(json.dumps(other), encoding="utf-8")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    done, seconds = codeprobe_run(tmp_path, small_config(tiny_model_dir, good_jsonl), out)
    assert_one_line_error(done, seconds, "different config")
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before


def test_check_run_writes_nothing(tmp_path, tiny_model_dir, good_jsonl):  # noqa: F811
    from codeprobe.pipeline.config import parse_config
    from codeprobe.pipeline.experiment import check_run

    out = tmp_path / "run"
    infos = check_run(parse_config(small_config(tiny_model_dir, good_jsonl)), out)
    assert list(infos) == [str(tiny_model_dir)] and not out.exists()

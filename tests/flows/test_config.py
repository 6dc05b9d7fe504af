"""The typed run config: every bad config is one message naming the key, read before any work;
the flat configs written before the sections keep their meaning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codeprobe.pipeline.config import ConfigError, RunConfig, parse_config
from codeprobe.probes.astprobe.train_config import PAPER_TRAINING, TrainConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("config", "names"),
    [
        ({"modles": ["x"]}, ["unknown key 'modles'", "allowed: models"]),
        ({"cat": {"typs": "all"}}, ["unknown key 'cat.typs'", "types, distance"]),
        ({"n_snippets": "many"}, ["data.n_snippets", "'many'"]),
        ({"quantile": 1.5}, ["cat.quantile", "less than 1", "1.5"]),
        ({"cat": {"top_k": 0}}, ["cat.top_k", "greater than or equal to 1"]),
        ({"models": []}, ["models", "at least 1"]),
        ({"languages": []}, ["languages", "at least 1"]),
        ({"layers": [-1]}, ["astprobe.hidden_states", ">= 0"]),
        ({"dtype": "float8"}, ["extraction.dtype", "'float32', 'bfloat16' or 'float16'"]),
        ({"training": {"lr": -1}}, ["training", "lr"]),
        ({"training": {"device": "cuda"}}, ["extraction.device"]),
        ({"max_epochs": 3, "training": {"max_epochs": 4}}, ["training.max_epochs is given twice"]),
        ({"seed": "zero"}, ["seed", "'zero'"]),
    ],
)
def test_a_bad_config_is_one_line_naming_the_key(config, names):
    with pytest.raises(ConfigError) as err:
        parse_config(config)
    message = str(err.value)
    assert "\n" not in message
    for name in names:
        assert name in message


def test_malformed_json_names_the_file_and_position(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"models": ["default"],\n "seed": 0,,\n}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.json:2:12: not valid JSON"):
        RunConfig.read(path)


def test_flat_configs_keep_their_meaning():
    flat = RunConfig(
        n_snippets=80,
        cat_types="paper",
        quantile=0.5,
        cat_max_subwords=128,
        layers=[1, 2],
        max_epochs=20,
        patience=5,
        min_improvement=0.0,
        probe_batch_size=32,
        probe_init="orthogonal",
        batch_size=4,
        shard_size=10,
        astprobe_model_input="code_tokens",
        probe_seeds=2,
    )
    assert flat.data.n_snippets == 80 and flat.extraction.batch_size == 4 and flat.extraction.shard_size == 10
    assert (flat.cat.types, flat.cat.quantile, flat.cat.max_subwords) == ("paper", 0.5, 128)
    assert flat.astprobe.hidden_states == (1, 2) and flat.astprobe.model_input == "code_tokens"
    assert flat.astprobe.probe_seeds == 2
    assert flat.training == TrainConfig(
        max_epochs=20, patience=5, min_improvement=0.0, batch_size=32, init="orthogonal"
    )
    assert RunConfig(cat=False, cat_types="topk").cat is None  # a method that is off: its settings are moot
    assert RunConfig(astprobe=True).astprobe == RunConfig().astprobe


def test_the_paper_budget_has_one_owner():
    assert RunConfig(training=PAPER_TRAINING).training.max_epochs == 20
    assert RunConfig(max_epochs=20, min_improvement=0.0).training == TrainConfig.paper()


def test_configs_round_trip_through_json_and_the_shipped_examples_read(tmp_path):
    cfg = RunConfig(models=("default", "x"), cat={"types": "all", "top_k": 3}, max_epochs=7)
    path = tmp_path / "config.json"
    path.write_text(cfg.to_json(), encoding="utf-8")
    assert RunConfig.read(path) == cfg
    example = RunConfig.read(ROOT / "examples" / "probe-checkpoints.json")
    assert example.training.init == "orthogonal" and example.astprobe.ranks == ()


def test_the_cli_refuses_a_bad_config_before_the_server_and_the_folder(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"models": ["default"], "cat": {"quantile": 2}}), encoding="utf-8")
    out = tmp_path / "run"
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"}  # a server would be unreachable
    script = "import sys; from codeprobe.cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", script, "run", "--config", str(config), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("codeprobe: error:") and "cat.quantile" in last
    assert not out.exists()

"""A small `codeprobe run` on decoders (issue 25): a Llama whose tokenizer puts BOS first and a
GPT-2 that adds no special token (tests/decoder_models.py) give finite CAT, AST-Probe and
attention-head numbers, CAT scored under the causal convention."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner
from decoder_models import decoder_models  # noqa: F401  (session fixture)
from flow_configs import small_config

from codeprobe.cli import main

pytestmark = pytest.mark.usefixtures("prefect_server")


def finite(x) -> bool:
    return isinstance(x, float | int) and math.isfinite(x)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_run_gives_finite_numbers_on_a_decoder(decoder_models, family, python_jsonl, tmp_path):  # noqa: F811
    config = small_config(decoder_models.dir(family), python_jsonl)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "--config", str(config_path), "--out", str(run)])
    assert result.exit_code == 0, result.output

    (r,) = json.loads((run / "summary.json").read_text())["results"]
    cat = r["cat"]
    assert cat["mask"] == "causal"
    assert [row["layer"] for row in cat["layers"]] == [0, 1]
    for row in cat["layers"]:
        assert all(finite(row[k]) for k in ("score", "random_baseline", "positional_baseline")), row
    ast = r["astprobe"]
    assert [row["hidden_state"] for row in ast["hidden_states"]] == [0, 1, 2]
    assert all(finite(row["f1"]) for row in ast["hidden_states"] + ast["baselines"]["random"])
    heads = r["heads"]
    assert heads["headline"]["n_relations"] > 0 and finite(heads["headline"]["mean"])

"""`codeprobe cat` on one snippet with a tiny random-weight model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cat_models import tiny_roberta_dir
from click.testing import CliRunner
from shared_data import cosqa_functions

from codeprobe.cli import main
from codeprobe.probes.cat import CATProbe

CODE = cosqa_functions()[1][1]


def invoke(args, stdin=None):
    return CliRunner().invoke(main, args, input=stdin)


@pytest.fixture(scope="module")
def model():
    return str(tiny_roberta_dir())


@pytest.fixture(scope="module")
def snippet_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cat") / "split.py"
    path.write_text(CODE, encoding="utf-8")
    return path


def test_table_has_every_layer_and_both_baselines(model, snippet_file):
    result = invoke(["cat", str(snippet_file), "--model", model])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# split.py:") and "types paper" in lines[0]
    assert lines[2].split() == ["layer", "tokens", "score", "random", "position"]
    assert [line.split()[0] for line in lines[3:]] == ["0", "1", "2"]


def test_json_is_one_object_matching_the_library(model, snippet_file):
    args = [
        "cat",
        str(snippet_file),
        "--model",
        model,
        "--json",
        "--types",
        "topk",
        "--distance",
        "ast",
        "--quantile",
        "0.7",
    ]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert obj["language"] == "python" and obj["model"]["n_layers"] == 3
    assert obj["settings"]["types"] == "topk" and obj["settings"]["distance"] == "ast"
    assert obj["settings"]["quantile"] == 0.7 and obj["grammar"]["package"] == "tree-sitter-python"
    assert set(obj["versions"]) >= {"codeprobe", "numpy", "tree-sitter"}
    layers = obj["layers"]
    assert [x["layer"] for x in layers] == [0, 1, 2]
    assert set(layers[0]) >= {"layer", "score", "random_baseline", "positional_baseline", "n_tokens"}
    want = CATProbe(types="topk", distance="ast", quantile=0.7).score([("split.py", CODE)], model, "python")
    np.testing.assert_allclose([x["score"] for x in layers], want.samples.score)
    np.testing.assert_allclose([x["positional_baseline"] for x in layers], want.samples.positional_baseline)


def test_paper_switches_reach_the_library(model, snippet_file):
    args = [
        "cat",
        str(snippet_file),
        "--model",
        model,
        "--json",
        "--model-input",
        "code_tokens",
        "--head-pooling",
        "max",
    ]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert obj["settings"]["model_input"] == "code_tokens" and obj["settings"]["head_pooling"] == "max"
    want = CATProbe(model_input="code_tokens", head_pooling="max").score([("split.py", CODE)], model, "python")
    np.testing.assert_allclose([x["score"] for x in obj["layers"]], want.samples.score)


def test_plot_writes_a_png(model, snippet_file, tmp_path):
    out = tmp_path / "cat.png"
    result = invoke(["cat", str(snippet_file), "--model", model, "--plot", str(out), "--layer", "1"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = invoke(["cat", str(snippet_file), "--model", model, "--plot", str(out), "--layer", "7"])
    assert bad.exit_code == 2 and "--layer" in bad.stderr


def test_default_types_and_errors(model):
    ruby = invoke(["cat", "-", "--lang", "ruby", "--model", model, "--json"], "def add(a, b)\n  a + b\nend\n")
    assert ruby.exit_code == 0, ruby.output
    assert json.loads(ruby.stdout)["settings"]["types"] == "all"
    broken = invoke(["cat", "-", "--lang", "python", "--model", model], "def f(:\n")
    assert broken.exit_code == 2 and "--allow-parse-errors" in broken.stderr
    paper = invoke(["cat", "-", "--lang", "ruby", "--types", "paper", "--model", model], "x = 1\n")
    assert paper.exit_code == 2 and "no frequent-type list" in paper.stderr

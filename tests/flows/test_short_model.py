"""Issue 27, "a model shorter than 256 positions": a RoBERTa-style model with 130 positions takes
128 subwords (specials included), under CAT-probing's 256. The limit in use is what a run
records (CAT's summary.json and parquet metadata, summary.json's sections) and what
`codeprobe cat` prints; every snippet cut there (CAT) or dropped for it (AST-Probe) is counted
where the reports show their counts."""

from __future__ import annotations

import json
import logging

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from flow_configs import small_config

from codeprobe.cli import main

pytestmark = pytest.mark.usefixtures("prefect_server")

LIMIT = 128  # 130 positions less RoBERTa's offset of padding_idx + 1 = 2


def function(i: int) -> str:
    """Distinct functions, about a third of them longer than 128 subwords."""
    n_lines = 16 if i % 10 in (0, 3, 6) else 2 + (i % 4) * 2
    body = "".join(f"    total = total + value_{i}_{k} * {k}\n" for k in range(n_lines))
    return f"def sum_{i}(values):\n    total = 0\n{body}    return total\n"


@pytest.fixture(scope="module")
def short_model(tmp_path_factory):
    from model.tiny_models import roberta_like

    return roberta_like(tmp_path_factory.mktemp("short-roberta"), max_position_embeddings=130)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("short-data") / "functions.jsonl"
    path.write_text("".join(json.dumps({"id": f"f{i}", "code": function(i)}) + "\n" for i in range(40)))
    return path


def n_over_limit(model_dir, codes) -> int:
    """How many of `codes` exceed the model's content budget (the limit less <s> and </s>)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    lengths = [len(tokenizer(c, add_special_tokens=False, verbose=False)["input_ids"]) for c in codes]
    return sum(n > LIMIT - 2 for n in lengths)


def test_run_records_and_reports_the_limit_in_use(short_model, dataset, tmp_path):
    config = small_config(short_model, dataset, n_snippets=40, layers=(0, 2))
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "--config", str(config_path), "--out", str(run)])
    assert result.exit_code == 0, result.output
    over = n_over_limit(short_model, [function(i) for i in range(40)])
    assert 5 <= over <= 20

    cat_summary = json.loads(next(run.glob("cat/*/*/summary.json")).read_text())
    assert cat_summary["settings"]["max_subwords"] == LIMIT
    assert cat_summary["settings"]["n_truncated"] == over
    meta = json.loads(pq.read_schema(next(run.glob("cat/*/*/samples.parquet"))).metadata[b"codeprobe"])
    assert meta["max_subwords"] == LIMIT and meta["n_truncated"] == over

    (r,) = json.loads((run / "summary.json").read_text())["results"]
    assert r["cat"]["max_subwords"] == LIMIT and r["cat"]["n_truncated"] == over
    assert r["cat"]["inputs"]["snippets"] == 40 and r["cat"]["inputs"]["truncated"] == over
    a = r["astprobe"]
    assert a["max_subwords"] == LIMIT
    assert a["inputs"]["dropped"] == {"does_not_fit_model": over}
    assert a["inputs"]["used"] == 40 - over and a["inputs"]["snippets"] == 40

    cut = f"{over} cut at {LIMIT} subwords (the model's limit; the setting asks 256)"
    dropped = f"dropped: does_not_fit_model {over} (longer than {LIMIT} subwords)"
    for page in (run / "report.md", run / "report.html"):
        text = page.read_text(encoding="utf-8")
        assert cut in text, page
        assert f"40 snippets, {40 - over} probed" in text and dropped in text, page


def test_codeprobe_cat_prints_the_limit_in_use(short_model, tmp_path, caplog):
    path = tmp_path / "long.py"
    path.write_text(function(0), encoding="utf-8")
    assert n_over_limit(short_model, [function(0)]) == 1
    with caplog.at_level(logging.WARNING, logger="codeprobe.cat"):
        result = CliRunner().invoke(main, ["cat", str(path), "--model", str(short_model), "--json"])
    assert result.exit_code == 0, result.output
    warnings = [rec.getMessage() for rec in caplog.records if "input cut" in rec.getMessage()]
    assert warnings == [f"long.py: input cut to {LIMIT} subwords; the tokens after the cut are not scored"]
    out = json.loads(result.stdout)
    assert out["settings"]["max_subwords"] == LIMIT and out["snippet"]["status"] == "truncated"

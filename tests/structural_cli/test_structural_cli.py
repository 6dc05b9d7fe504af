"""`codeprobe structural train` and `predict` on a tiny random-weight BERT and 70 real Python
functions (cosqa-dev): the probe folder, the printed scores, the JSON's scores recomputed from its
own matrices with `codeprobe.probes.structural.metrics`, its gold heads against `codeprobe parse
--json`, its predicted distances against the saved probe run by hand, and the typed errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from astprobe.tiny_model import one_thread, tiny_model_dir  # noqa: F401  (fixtures)
from click.testing import CliRunner
from shared_data import cosqa_functions

from codeprobe.cli import main
from codeprobe.model import Extractor, load_model
from codeprobe.probes.structural import DepthProbe, DistanceProbe, metrics
from codeprobe.probes.structural.vectors import token_tree_vectors

pytestmark = pytest.mark.usefixtures("one_thread")

MAXIMUM = "def maximum(a, b):\n    if a > b:\n        return a\n    return b\n"


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    """(probe folder, train's output): every hidden state of the tiny model, rank 8, 2 epochs."""
    root = tmp_path_factory.mktemp("structural-cli")
    data = root / "functions.jsonl"
    data.write_text("".join(json.dumps({"id": i, "code": c}) + "\n" for i, c in cosqa_functions()[:70]))
    out = root / "probe"
    args = ["structural", "train", "--dataset", str(data), "--lang", "python", "--model", str(tiny_model_dir)]
    args += ["--rank", "8", "--epochs", "2", "--out", str(out)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.fixture
def snippet(tmp_path):
    path = tmp_path / "maximum.py"
    path.write_text(MAXIMUM)
    return path


def predict(*args: str):
    return CliRunner().invoke(main, ["structural", "predict", *args])


def test_train_writes_the_probe_folder_and_prints_scores(trained):
    out, output = trained
    settings = json.loads((out / "structural.json").read_text())
    assert settings["hidden_states"] == [0, 1, 2] and settings["rank"] == 8 and settings["language"] == "python"
    assert settings["selected"]["distance"] in (0, 1, 2) and settings["selected"]["depth"] in (0, 1, 2)
    assert settings["model"]["info"]["hidden_size"] == 32 and settings["training"]["max_epochs"] == 2
    kept = {name: part["kept"] for name, part in settings["snippets"].items()}
    assert all(n > 0 for n in kept.values()) and sum(kept.values()) <= 70
    rows = settings["scores"]["hidden_states"]
    assert [r["hidden_state"] for r in rows] == [0, 1, 2]
    for row in rows:
        assert 0 <= row["distance"]["uuas"] <= 1 and len(row["distance"]["uuas_per_snippet"]["ci"]) == 2
        assert row["minus_linear"]["uuas"]["n"] == kept["test"]
    # Selection on validation: the chosen hidden states are the best validation scores.
    best_uuas = max(rows, key=lambda r: r["valid_uuas"])["hidden_state"]
    assert settings["selected"]["distance"] == best_uuas
    assert settings["selected"]["depth"] == max(rows, key=lambda r: r["valid_nspr"])["hidden_state"]
    for sub in ("distance", "depth", "stacked/distance", "stacked/depth"):
        assert (out / sub / "probe.safetensors").exists() and (out / sub / "probe.json").exists()
    assert DistanceProbe.load(out / "distance").proj_.shape == (32, 8)
    lines = output.splitlines()
    assert lines[1].split()[:3] == ["hidden", "state", "valid"] and lines[5].split()[0] == "linear"
    assert "selected: distance" in output and "minus linear: UUAS" in output and f"probe folder: {out}" in output


def test_predict_json_recomputes(trained, snippet, tiny_model_dir):
    out, _ = trained
    result = predict(str(snippet), "--probe", str(out), "--json")
    assert result.exit_code == 0, result.output
    obj = json.loads(result.output)
    n = len(obj["tokens"])
    predicted = np.array(obj["predicted_distance"])
    gold = np.array(obj["gold_distance"])
    heads = np.array(obj["gold_heads"])
    assert n == 17 and predicted.shape == gold.shape == (n, n)
    # The scores, recomputed from the JSON's own arrays.
    assert metrics.uuas(predicted, heads) == obj["uuas"] == obj["uuas_correct"] / obj["uuas_total"]
    assert metrics.uuas_counts(predicted, heads) == (obj["uuas_correct"], obj["uuas_total"])
    assert metrics.dspr(predicted, gold) == pytest.approx(obj["dspr"], abs=1e-12)
    assert metrics.spanning_tree(predicted).tolist() == obj["predicted_heads"]
    depths = np.array(obj["predicted_depths"])
    assert metrics.nspr(depths, np.array(obj["gold_depths"])) == pytest.approx(obj["nspr"], abs=1e-12)
    assert metrics.root_accuracy(depths, heads) == obj["root_correct"]
    assert obj["linear_baseline"]["uuas"] == metrics.linear_baseline(heads, gold).uuas
    # The gold is the token tree `codeprobe parse` gives (strings collapsed).
    parsed = CliRunner().invoke(main, ["parse", str(snippet), "--json", "--collapse-strings"])
    parsed = json.loads(parsed.output)
    assert obj["gold_heads"] == parsed["heads"] and obj["gold_depths"] == parsed["depths"]
    assert [t["text"] for t in obj["tokens"]] == [
        MAXIMUM.encode()[t["start"] : t["end"]].decode() for t in parsed["tokens"]
    ]
    # The predictions are the saved probes' on the hidden states they were selected for.
    settings = json.loads((out / "structural.json").read_text())
    assert obj["hidden_state"] == settings["selected"]
    states = [obj["hidden_state"]["distance"], obj["hidden_state"]["depth"]]
    extractor = Extractor(load_model(str(tiny_model_dir), device="cpu"), attention=False, length_policy="skip")
    vectors = token_tree_vectors([("maximum", MAXIMUM)], "python", extractor, hidden_states=states).vectors[0]
    np.testing.assert_allclose(DistanceProbe.load(out / "distance").predict([vectors[0]])[0], predicted, rtol=1e-6)
    np.testing.assert_allclose(DepthProbe.load(out / "depth").predict([vectors[1]])[0], depths, rtol=1e-6)


def test_predict_prints_a_table_and_takes_another_hidden_state(trained, snippet):
    out, _ = trained
    shown = predict(str(snippet), "--probe", str(out))
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].startswith("# maximum.py:") and len(lines) == 2 + 17 + 2
    assert lines[-1].startswith("UUAS ") and "linear baseline: UUAS 0.375" in lines[-1]
    other = predict(str(snippet), "--probe", str(out), "--hidden-state", "1", "--json")
    assert json.loads(other.output)["hidden_state"] == {"distance": 1, "depth": 1}
    missing = predict(str(snippet), "--probe", str(out), "--hidden-state", "5")
    assert missing.exit_code == 2 and "hidden state 5 was not trained" in missing.output


def test_predict_html_page(trained, snippet, tmp_path):
    """The page in headless Chromium: no console error, no request, both trees' arcs (n - 1
    edges each) and both heat maps drawn."""
    from selenium.webdriver.support.ui import WebDriverWait
    from viz.browser import console_problems, open_browser, requested_urls

    out, _ = trained
    page = tmp_path / "maximum.html"
    result = predict(str(snippet), "--probe", str(out), "--html", str(page))
    assert result.exit_code == 0, result.output
    with open_browser() as driver:
        url = page.resolve().as_uri()
        driver.get(url)
        WebDriverWait(driver, 30).until(
            lambda d: d.find_element("tag name", "body").get_attribute("data-structural-ready") == "1"
        )
        assert console_problems(driver) == []
        assert all(u == url or u.startswith(("data:", "blob:")) for u in requested_urls(driver, url))
        arcs = driver.find_element("css selector", "[data-testid=structural-arcs]")
        assert len(arcs.find_elements("css selector", "path.gold")) == 16
        assert len(arcs.find_elements("css selector", "path.pred")) == 16
        for testid in ("matrix-gold", "matrix-predicted", "structural-scores"):
            assert driver.find_element("css selector", f"[data-testid={testid}]").is_displayed()


def test_predict_errors(trained, snippet, tmp_path):
    out, _ = trained
    absent = predict(str(snippet), "--probe", str(tmp_path / "nowhere"))
    assert absent.exit_code == 2 and "no probe folder at" in absent.output
    empty = tmp_path / "empty"
    empty.mkdir()
    not_probe = predict(str(snippet), "--probe", str(empty))
    assert not_probe.exit_code == 2 and "is not a structural probe folder" in not_probe.output
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n    return\n")
    unparsable = predict(str(broken), "--probe", str(out))
    assert unparsable.exit_code == 2 and "does not parse as python" in unparsable.output
    unknown = predict(str(snippet), "--probe", str(out), "--lang", "klingon")
    assert unknown.exit_code == 2 and "unknown language 'klingon'" in unknown.output
    no_suffix = tmp_path / "maximum.xyz"
    no_suffix.write_text(MAXIMUM)
    untold = predict(str(no_suffix), "--probe", str(out))
    assert untold.exit_code == 2 and "cannot tell the language" in untold.output
    java = tmp_path / "Max.java"
    java.write_text("int max(int a, int b) { return a > b ? a : b; }\n")
    other_language = predict(str(java), "--probe", str(out))
    assert other_language.exit_code == 2 and "is for python, not java" in other_language.output
    moved = tmp_path / "other-model"
    shutil.copytree(out, moved)
    settings = json.loads((moved / "structural.json").read_text())
    settings["model"]["info"]["fingerprint"] = "0" * 64  # as if the model's files had changed since
    (moved / "structural.json").write_text(json.dumps(settings))
    changed = predict(str(snippet), "--probe", str(moved))
    assert changed.exit_code == 2 and "is not the one" in changed.output and "fingerprint differs" in changed.output


def test_train_rejects_a_split_it_cannot_fill(tiny_model_dir, tmp_path):
    data = tmp_path / "two.jsonl"
    data.write_text("".join(json.dumps({"id": i, "code": c}) + "\n" for i, c in cosqa_functions()[:2]))
    args = ["structural", "train", "--dataset", str(data), "--lang", "python", "--model", str(tiny_model_dir)]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "split has no snippet the model can read whole" in result.output

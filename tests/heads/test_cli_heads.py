"""`codeprobe heads` on one snippet: the packaged text model and tiny random-weight models
(an encoder and a decoder); per-edge hits against a plain loop over the same attention."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cat.cat_models import tiny_bert_dir
from click.testing import CliRunner
from model.tiny_models import tiny_model

from codeprobe.cli import main
from codeprobe.probes.cat import CATProbe
from codeprobe.syntax import parse, relation_edges

CODE = """def scale(xs, k=2):
    if not xs:
        return []
    ys = [x * k for x in xs]
    return sorted(ys, reverse=True)
"""


def invoke(args):
    return CliRunner().invoke(main, ["heads", *args])


@pytest.fixture(scope="module")
def snippet_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("heads") / "scale.py"
    path.write_text(CODE, encoding="utf-8")
    return path


def run_json(path, *args):
    result = invoke([str(path), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # exactly one JSON object: json.loads rejects anything after it


@pytest.fixture(scope="module")
def packaged(snippet_file, tmp_path_factory):
    """One run on the packaged model: (JSON object, the HTML page's text)."""
    html = tmp_path_factory.mktemp("html") / "heads.html"
    obj = run_json(snippet_file, "--lang", "python", "--html", str(html))
    return obj, html.read_text(encoding="utf-8")


def library_inputs(code, model, max_subwords=256):
    """The same library call the command makes: CAT-probing's per-head token attention."""
    probe = CATProbe(types="all", per_head=True, max_subwords=max_subwords, batch_size=1)
    return next(iter(probe.inputs([("s", code)], model, "python")))


def plain_topk(row, attending, k, causal):
    """The k best candidates of one attention row: descending weight, lower index first; the
    attending token is no candidate, nor (causal) any token right of it."""
    cand = [j for j in range(len(row)) if j != attending and (not causal or j <= attending)]
    return sorted(cand, key=lambda j: (-row[j], j))[:k]


def kept_edges(code, positions):
    """Plain loop: the relation edges whose head and whole dependent the model read, moved
    onto the kept tokens' indices."""
    edges = relation_edges(parse(code, "python").tokens())
    where = {int(p): i for i, p in enumerate(positions)}
    out = []
    for rec in edges.to_records():
        s, e = rec["dependent"]
        if rec["head"] in where and all(t in where for t in range(s, e)):
            out.append((rec["relation"], where[rec["head"]], where[s], where[e - 1] + 1))
    return out, len(edges)


def check_against_loop(obj, snippet, causal=False):
    att = np.asarray(snippet.sample.attention, dtype=np.float64)
    n_layers, n_heads = att.shape[:2]
    assert (obj["n_layers"], obj["n_heads"]) == (n_layers, n_heads)
    expected, total = kept_edges(CODE, snippet.sample.positions)
    got = [(e["relation"], e["head"], *e["dependent"]) for e in obj["edges"]]
    assert sorted(got) == sorted(expected)
    assert obj["input"]["n_edges"] == total
    assert obj["input"]["n_edges_scored"] == len(expected)
    assert obj["input"]["n_edges_dropped"] == total - len(expected) == len(obj["dropped_edges"])
    heads = [(layer, g) for layer in range(n_layers) for g in range(n_heads)]
    for e in obj["edges"]:
        h, (s, t) = e["head"], e["dependent"]
        visible = {j for j in range(s, t) if j != h and (not causal or j <= h)}
        for k in obj["settings"]["ks"]:
            top = {p: set(plain_topk(att[p][h], h, k, causal)) for p in heads}
            expected = {
                "head->dep/first": ({p for p in heads if s in top[p]}, not causal or s <= h),
                "head->dep/any": ({p for p in heads if top[p] & set(range(s, t))}, bool(visible)),
                "head->dep/last": ({p for p in heads if t - 1 in top[p]}, not causal or t - 1 <= h),
                "dep->head/first": (
                    {p for p in heads if h in plain_topk(att[p][s], s, k, causal)},
                    not causal or h <= s,
                ),
            }
            for name, (hits, scorable) in expected.items():
                sc = e["scores"][name]
                assert sc["scorable"] == scorable, (e, name)
                assert {tuple(p) for p in sc["hits"][str(k)]} == (hits if scorable else set()), (e, name, k)


def test_packaged_model_json_shape_and_text_model_note(packaged):
    obj, _ = packaged
    for key in ("tokens", "relations", "edges", "model", "input", "settings", "dropped_edges", "notes"):
        assert key in obj
    assert obj["model"]["is_code_model"] is False
    assert any("text model" in n for n in obj["notes"])
    assert any("no intervals" in n for n in obj["notes"])
    assert obj["intervals"] is None
    assert obj["input"]["max_subwords"] == 256
    assert obj["settings"]["ks"] == [1, 3] and obj["settings"]["causal"] is False
    assert [t["text"] for t in obj["tokens"]][:3] == ["def", "scale", "("]
    names = [r["name"] for r in obj["relations"]]
    assert names == sorted(names) and "call:function->arguments" in names
    assert sum(r["n_edges"] for r in obj["relations"]) == len(obj["edges"]) == 21  # docs/relations.md's example
    rel = obj["relations"][0]
    assert set(rel["scores"]) == set(obj["scores"])
    assert set(rel["scores"]["head->dep/first"]["k"]) == {"1", "3"}
    base = rel["scores"]["head->dep/first"]["k"]["1"]["offset_baseline"]
    assert len(base["offsets"]) == 1 and 0 <= base["hits"] <= rel["n_edges"]


def test_packaged_model_hits_equal_a_plain_loop(packaged):
    obj, _ = packaged
    check_against_loop(obj, library_inputs(CODE, None))


def test_html_page_has_relation_names(packaged):
    obj, page = packaged
    assert page.startswith("<!DOCTYPE html>")
    for rel in obj["relations"]:
        assert json.dumps(rel["name"])[1:-1].replace("<", "\\u003c") in page
    assert "relationsSection" in page and '"kind":"heads"' in page


def test_tiny_model_text_output(snippet_file):
    result = invoke([str(snippet_file), "--model", str(tiny_bert_dir()), "--k", "1,2"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "no intervals" in out and "codeprobe run" in out
    assert "call:function->arguments" in out and "29:sorted -> [30, 37) ( ys , reverse = True )" in out
    assert "top-2:" in out and "top-3:" not in out


def test_tiny_model_hits_equal_a_plain_loop_with_a_cut_input(snippet_file):
    """An input limit that cuts the snippet drops the edges reaching past the cut."""
    model = str(tiny_bert_dir())
    obj = run_json(snippet_file, "--model", model, "--max-subwords", "30", "--k", "1,3,5")
    snippet = library_inputs(CODE, model, max_subwords=30)
    assert snippet.status == "truncated" and obj["input"]["status"] == "truncated"
    assert obj["input"]["n_edges_dropped"] > 0
    check_against_loop(obj, snippet)


def test_decoder_scores_only_the_left_looking_direction(snippet_file):
    model = str(tiny_model("gpt2"))
    obj = run_json(snippet_file, "--model", model)
    assert obj["settings"]["causal"] is True
    assert any("decoder" in n and "left" in n for n in obj["notes"])
    check_against_loop(obj, library_inputs(CODE, model), causal=True)
    assert not any(e["scores"]["head->dep/first"]["scorable"] for e in obj["edges"])  # dependents follow heads


@pytest.mark.parametrize(
    ("content", "args"),
    [("x = 1\n", ["--lang", "klingon"]), ("", ["--lang", "python"]), ("x = 1\n", ["--lang", "python", "--k", "0"])],
)
def test_bad_input_is_one_error_line(tmp_path, content, args):
    path = tmp_path / "f.py"
    path.write_text(content, encoding="utf-8")
    result = invoke([str(path), *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("codeprobe: error:")

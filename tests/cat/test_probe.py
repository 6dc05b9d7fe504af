"""CATProbe on real snippets with tiny random-weight models, against the reference oracle:
raw model attention, block means in loops, networkx all-pairs BFS, loop scores."""

from __future__ import annotations

import numpy as np
import pytest
from cat_models import tiny_model
from shared_data import cosqa_functions, java_methods

from codeprobe.errors import InputError
from codeprobe.probes.cat import MEAN_HEAD, PAPER_TYPES
from codeprobe.probes.cat.probe import CATProbe
from codeprobe.reference import cat as cat_oracle
from codeprobe.syntax import parse

SNIPPETS = {"python": cosqa_functions()[:6], "java": java_methods(6)}


def oracle_run(loaded, language, snippets, types, *, uast=True, max_subwords=256, top_k=8):
    """{(id, layer): score} and the token attention, the reference way."""
    per_sample = []
    for ident, code in snippets:
        tree = parse(code, language)
        nodes = cat_oracle.leaves(tree)
        spans = [(int(tree.char_offsets[tree.start_byte[v]]), int(tree.char_offsets[tree.end_byte[v]])) for v in nodes]
        kept, members, attention = cat_oracle.subword_attention(loaded, code, spans, max_subwords)
        per_sample.append((ident, tree, kept, members, attention))
    n_layers = per_sample[0][4].shape[0]
    if types == "topk":
        token_att, all_types = [], []
        for _, tree, kept, members, attention in per_sample:
            _, a, t = cat_oracle.snippet_scores(tree, kept, members, attention, [None] * n_layers, uast=uast)
            token_att.append(a)
            all_types.append(t)
        num, hit, total = cat_oracle.type_rates(all_types, token_att)
        kept_types = [cat_oracle.top_types(num, hit[layer], total, top_k) for layer in range(n_layers)]
    else:
        kept_types = [set(PAPER_TYPES[language]) if types == "paper" else None] * n_layers
    out, token_attention = {}, {}
    for ident, tree, kept, members, attention in per_sample:
        scores, a, _ = cat_oracle.snippet_scores(tree, kept, members, attention, kept_types, uast=uast)
        token_attention[ident] = a
        for layer, s in enumerate(scores):
            out[(ident, layer)] = s
    return out, token_attention, kept_types


@pytest.mark.parametrize(
    "language,types,distance,model",
    [
        ("python", "paper", "uast", "roberta"),
        ("java", "topk", "uast", "roberta"),
        ("python", "all", "ast", "bert"),
        ("java", "paper", "uast", "bert"),
    ],
)
def test_probe_matches_reference(language, types, distance, model):
    loaded = tiny_model(model)
    snippets = SNIPPETS[language]
    probe = CATProbe(types=types, distance=distance)
    result = probe.score(snippets, loaded, language)
    want, token_attention, kept_types = oracle_run(loaded, language, snippets, types, uast=distance == "uast")
    assert [set(k) if k is not None else None for k in result.kept_types] == kept_types
    rows = result.samples
    assert len(rows) == len(want)
    for r in range(len(rows)):
        expect = want[(rows.sample_id[r], int(rows.layer[r]))]
        if expect is None:
            assert np.isnan(rows.score[r])
        else:
            assert rows.score[r] == pytest.approx(expect, abs=1e-6)
    # The extractor's pooled attention is the block mean.
    for inputs in probe.inputs(snippets, loaded, language):
        np.testing.assert_allclose(inputs.sample.attention, token_attention[inputs.sample.sample_id], atol=1e-6)
    assert result.settings["model"]["n_layers"] == rows.layer.max() + 1
    assert result.settings["grammar"]["package"] == f"tree-sitter-{language}"


def test_per_head_rows_match_reference():
    tiny_roberta = tiny_model("roberta")
    snippets = SNIPPETS["python"][:3]
    result = CATProbe(types="all", per_head=True).score(snippets, tiny_roberta, "python")
    rows = result.samples
    assert set(rows.head.tolist()) == {MEAN_HEAD, 0, 1, 2, 3}
    for ident, code in snippets:
        tree = parse(code, "python")
        nodes = cat_oracle.leaves(tree)
        spans = [(int(tree.char_offsets[tree.start_byte[v]]), int(tree.char_offsets[tree.end_byte[v]])) for v in nodes]
        kept, members, attention = cat_oracle.subword_attention(tiny_roberta, code, spans, 256)
        d_all = cat_oracle.distance(tree)
        d = [[d_all[i][j] for j in kept] for i in kept]
        for layer in range(3):
            for head in range(4):
                a = cat_oracle.block_mean(attention[layer, head], members)
                sel = (rows.sample_id == ident) & (rows.layer == layer) & (rows.head == head)
                assert rows.score[sel][0] == pytest.approx(cat_oracle.cat_score(a, d), abs=1e-6)


def test_truncation_and_skips():
    tiny_roberta = tiny_model("roberta")
    long_code = "def f(x):\n" + "".join(f"    y{i} = x + {i}\n" for i in range(40)) + "    return x\n"
    snippets = [("long", long_code), ("broken", "def f(:\n  return"), ("empty", "   \n"), ("ok", "def g(a):\n    return a\n")]
    probe = CATProbe(types="paper", max_subwords=64)
    inputs = list(probe.inputs(snippets, tiny_roberta, "python"))
    assert inputs[0].status == "truncated" and len(inputs[0].sample.types) < 40
    assert [getattr(x, "reason", None) for x in inputs[1:3]] == ["parse_error", "EmptyCodeError"]
    result = probe.score(snippets, tiny_roberta, "python")
    reasons = dict(zip(result.samples.sample_id.tolist(), result.samples.skip_reason.tolist()))
    assert reasons["broken"] == "parse_error" and reasons["long"] == ""
    oracle, _, _ = oracle_run(tiny_roberta, "python", [snippets[0]], "paper", max_subwords=64)
    got = result.samples.score[(result.samples.sample_id == "long") & (result.samples.head == MEAN_HEAD)]
    np.testing.assert_allclose(got, [oracle[("long", layer)] for layer in range(3)], atol=1e-6)


def test_input_errors():
    tiny_roberta = tiny_model("roberta")
    with pytest.raises(InputError):
        CATProbe(types="paper").score(["x = 1"], tiny_roberta, "ruby")
    with pytest.raises(InputError):
        CATProbe(distance="euclid")
    with pytest.raises(InputError):
        CATProbe().score(["x = 1"], tiny_roberta)  # no language
    with pytest.raises(InputError):
        CATProbe().score([], tiny_roberta, "python")

"""CATProbe on real snippets with tiny random-weight models, against the reference oracle:
raw model attention, block means in loops, networkx all-pairs BFS, loop scores."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from cat_models import tiny_model
from oracles import cat as cat_oracle
from shared_data import cosqa_functions, java_methods
from sklearn.base import clone

from codeprobe.errors import InputError
from codeprobe.probes.astprobe.tuples import tuple_tokens
from codeprobe.probes.cat import MEAN_HEAD, PAPER_TYPES
from codeprobe.probes.cat.probe import CATProbe
from codeprobe.syntax import parse

SNIPPETS = {"python": cosqa_functions()[:6], "java": java_methods(6)}


def joined_tokens(tree, nodes):
    """The reference's model input: the leaves' texts joined by spaces, whitespace collapsed
    (`" ".join(" ".join(code_tokens).split())`), and each leaf's span in it, found by a left to
    right search (an empty leaf gets an empty span that no subword overlaps)."""
    words = [" ".join(tree.node_text(v).split()) for v in nodes]
    text = " ".join(" ".join(tree.node_text(v) for v in nodes).split())
    spans, at = [], 0
    for w in words:
        start = text.index(w, at) if w else at
        spans.append((start, start + len(w)))
        at = start + len(w)
    return text, spans


def oracle_run(
    loaded,
    language,
    snippets,
    types,
    *,
    uast=True,
    max_subwords=256,
    top_k=8,
    model_input="source",
    head_pooling="mean",
):
    """{(id, layer): score} and the token attention, the reference way."""
    per_sample = []
    for ident, code in snippets:
        tree = parse(code, language)
        nodes = cat_oracle.leaves(tree)
        spans = [(int(tree.char_offsets[tree.start_byte[v]]), int(tree.char_offsets[tree.end_byte[v]])) for v in nodes]
        if model_input == "code_tokens":
            code, spans = joined_tokens(tree, nodes)
        kept, members, attention = cat_oracle.subword_attention(loaded, code, spans, max_subwords)
        per_sample.append((ident, tree, kept, members, attention))
    n_layers = per_sample[0][4].shape[0]
    if types == "topk":
        token_att, all_types = [], []
        for _, tree, kept, members, attention in per_sample:
            _, a, t = cat_oracle.snippet_scores(
                tree, kept, members, attention, [None] * n_layers, uast=uast, head_pooling=head_pooling
            )
            token_att.append(a)
            all_types.append(t)
        num, hit, total = cat_oracle.type_rates(all_types, token_att)
        kept_types = [cat_oracle.top_types(num, hit[layer], total, top_k) for layer in range(n_layers)]
    else:
        kept_types = [set(PAPER_TYPES[language]) if types == "paper" else None] * n_layers
    out, token_attention = {}, {}
    for ident, tree, kept, members, attention in per_sample:
        scores, a, _ = cat_oracle.snippet_scores(
            tree, kept, members, attention, kept_types, uast=uast, head_pooling=head_pooling
        )
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


@pytest.mark.parametrize(
    "language,types,model_input,head_pooling,model",
    [
        ("python", "paper", "code_tokens", "mean", "roberta"),
        ("java", "topk", "code_tokens", "max", "bert"),
        ("python", "topk", "source", "max", "roberta"),
    ],
)
def test_paper_switches_match_reference(language, types, model_input, head_pooling, model):
    """The reference's space-joined code tokens as input, and its head maximum."""
    loaded = tiny_model(model)
    snippets = SNIPPETS[language]
    probe = CATProbe(types=types, model_input=model_input, head_pooling=head_pooling)
    result = probe.score(snippets, loaded, language)
    want, token_attention, kept_types = oracle_run(
        loaded, language, snippets, types, model_input=model_input, head_pooling=head_pooling
    )
    assert [set(k) if k is not None else None for k in result.kept_types] == kept_types
    rows = result.samples
    for r in range(len(rows)):
        expect = want[(rows.sample_id[r], int(rows.layer[r]))]
        assert np.isnan(rows.score[r]) if expect is None else rows.score[r] == pytest.approx(expect, abs=1e-6)
    for inputs in probe.inputs(snippets, loaded, language):
        np.testing.assert_allclose(inputs.sample.attention, token_attention[inputs.sample.sample_id], atol=1e-6)
    assert result.settings["model_input"] == model_input and result.settings["head_pooling"] == head_pooling


def test_code_tokens_input_reads_no_layout_and_no_comments():
    tiny_roberta = tiny_model("roberta")
    code = 'def f(a):\n    # a comment\n    s = "x   y"\n\n    return s\n'
    source = next(iter(CATProbe(types="all").inputs([code], tiny_roberta, "python")))
    joined = next(iter(CATProbe(types="all", model_input="code_tokens").inputs([code], tiny_roberta, "python")))
    # The same tokens are aligned either way; only the text around them differs.
    assert joined.labels == source.labels
    assert joined.n_unmatched_subwords == 0 < source.n_unmatched_subwords  # the comment's subwords
    assert joined.n_subwords < source.n_subwords
    assert not np.allclose(joined.sample.attention, source.sample.attention)


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


def test_gpu_configuration_gives_the_same_inputs():
    """Where the model is not on the CPU, parsing and tokenising run in a background thread and
    torch sparse products pool; forced here on the CPU, they give what the CPU defaults give."""
    from codeprobe.model import Extractor

    tiny_roberta = tiny_model("roberta")
    snippets = [*SNIPPETS["python"], ("broken", "def f(:\n  return")]
    probe = CATProbe(types="paper", per_head=True, batch_size=2)
    assert probe.extractor(tiny_roberta).prefetch is False
    gpu_like = Extractor(tiny_roberta, batch_size=2, heads="all", prefetch=True, pooling="sparse")
    plain = list(probe.inputs(snippets, tiny_roberta, "python"))
    threaded = list(probe.inputs(snippets, gpu_like, "python"))
    assert [type(x) for x in threaded] == [type(x) for x in plain] and len(plain) == 7
    for a, b in zip(plain[:-1], threaded[:-1]):
        assert a.sample.sample_id == b.sample.sample_id and a.sample.types == b.sample.types
        np.testing.assert_allclose(b.sample.attention, a.sample.attention, rtol=0, atol=1e-6)
    assert threaded[-1].reason == plain[-1].reason == "parse_error"


def test_truncation_and_skips():
    tiny_roberta = tiny_model("roberta")
    long_code = "def f(x):\n" + "".join(f"    y{i} = x + {i}\n" for i in range(40)) + "    return x\n"
    snippets = [
        ("long", long_code),
        ("broken", "def f(:\n  return"),
        ("empty", "   \n"),
        ("ok", "def g(a):\n    return a\n"),
    ]
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


def test_a_file_over_the_distance_limit_is_scored_on_what_the_model_read(monkeypatch):
    """Distances are measured between the aligned tokens only: a file with more tokens than
    `MAX_TOKENS`, cut at the model's input limit, is scored, with the full matrix's entries."""
    from codeprobe.syntax import distances, uast_distance

    tiny_roberta = tiny_model("roberta")
    code = "def f(x):\n" + "".join(f"    y{i} = x + {i}\n" for i in range(40)) + "    return x\n"
    full = uast_distance(parse(code, "python").tokens())
    monkeypatch.setattr(distances, "MAX_TOKENS", 100)
    assert len(full) > 100
    (x,) = CATProbe(types="paper", max_subwords=64).inputs([("long", code)], tiny_roberta, "python")
    assert x.status == "truncated" and len(x.sample.types) < 100
    np.testing.assert_array_equal(x.sample.distance, full[np.ix_(x.sample.positions, x.sample.positions)])


def test_input_errors():
    tiny_roberta = tiny_model("roberta")
    with pytest.raises(InputError):
        CATProbe(types="paper").score(["x = 1"], tiny_roberta, "ruby")
    # Settings are checked when the probe runs (scikit-learn's contract), not by __init__.
    bad = [
        ({"types": "some"}, "type strategy"),
        ({"distance": "euclid"}, "distance"),
        ({"quantile": 1.0}, "quantile"),
        ({"top_k": 0}, "top_k"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"model_input": "tokens"}, "model_input"),
        ({"head_pooling": "min"}, "head_pooling"),
        ({"mask": "upper"}, "mask"),
        ({"per_head": True, "head_pooling": "max"}, "per_head"),
        ({"model_input": "code_tokens", "hidden_state_tokens": tuple_tokens}, "hidden_state_tokens"),
    ]
    for params, message in bad:
        probe = CATProbe(**params)
        assert all(getattr(probe, k) is v for k, v in params.items())
        with pytest.raises(InputError, match=message):
            probe.score(["x = 1"], tiny_roberta, "python")
        with pytest.raises(InputError, match=message):
            list(probe.inputs(["x = 1"], tiny_roberta, "python"))
        with pytest.raises(InputError, match=message):
            probe.extractor(tiny_roberta)
    with pytest.raises(InputError):
        CATProbe().score(["x = 1"], tiny_roberta)  # no language
    with pytest.raises(InputError):
        CATProbe().score([], tiny_roberta, "python")


def test_probe_follows_scikit_learns_contract():
    tiny_roberta = tiny_model("roberta")
    snippets = SNIPPETS["java"]
    shared = partial(tuple_tokens, drop_line_continuations=True)
    probe = CATProbe(types="topk", quantile=0.7, top_k=4, per_head=True, hidden_state_tokens=shared)
    params = probe.get_params()
    assert params["quantile"] == 0.7 and params["hidden_state_tokens"] is shared and params["top_k"] == 4
    assert set(params) == {
        "types",
        "distance",
        "quantile",
        "random_state",
        "per_head",
        "model_input",
        "head_pooling",
        "mask",
        "top_k",
        "max_subwords",
        "batch_size",
        "allow_parse_errors",
        "spill_dir",
        "hidden_state_tokens",
    }
    copy = clone(probe)
    assert copy is not probe and copy.get_params().keys() == params.keys()
    assert all(copy.get_params()[k] == v for k, v in params.items() if k != "hidden_state_tokens")
    want, got = probe.score(snippets, tiny_roberta, "java"), copy.score(snippets, tiny_roberta, "java")
    np.testing.assert_array_equal(got.samples.score, want.samples.score)
    assert got.kept_types == want.kept_types
    # set_params changes what score computes, as a new probe with those settings would.
    copy.set_params(quantile=0.6, per_head=False)
    moved = copy.score(snippets, tiny_roberta, "java").samples.score
    fresh = CATProbe(types="topk", quantile=0.6, top_k=4).score(snippets, tiny_roberta, "java").samples.score
    np.testing.assert_array_equal(moved, fresh)
    assert probe.quantile == 0.7 and probe.per_head

"""The explorer's payload against the library it shows: CAT-scores, the masks the page counts,
distances, attention, tokens, and the trees' per-non-terminal scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cat.cat_models import tiny_model
from shared_data import cosqa_functions

from codeprobe.errors import InputError
from codeprobe.model import Extractor, ModelInput
from codeprobe.probes.astprobe.recovered_tree import RecoveredTree
from codeprobe.probes.cat import CATProbe
from codeprobe.syntax import ast_distance, parse, uast_distance
from codeprobe.viz import choose_snippets, explorer_payload, nonterminal_scores
from codeprobe.viz.explorer import pack, unpack

SNIPPETS = list(cosqa_functions()[:30])


@pytest.fixture(scope="module")
def payload():
    return explorer_payload(SNIPPETS, language="python", model=tiny_model("roberta"), max_snippets=5, seed=1)


def masks_of(cat: dict) -> list[np.ndarray]:
    """Per layer, the (1 + H, k, k) M_A masks, decoded as the page decodes them."""
    h1 = cat["n_heads"] + 1
    sizes = [len(cat["kept_index"][g]) for g in cat["layer_group"]]
    bits = np.unpackbits(unpack(cat["masks"], np.uint8, (-1,)))
    out, at = [], 0
    for k in sizes:
        out.append(bits[at : at + h1 * k * k].reshape(h1, k, k).astype(bool))
        at += h1 * k * k
    return out


def test_scores_equal_the_library_and_the_masks_reproduce_them(payload):
    ids = [s["id"] for s in payload["snippets"]]
    assert len(ids) == 5 and len(set(ids)) == 5
    lib = (
        CATProbe(types="paper", per_head=True)
        .score([(i, c) for i, c in SNIPPETS if i in ids], tiny_model("roberta"), "python")
        .samples
    )
    q = payload["settings"]["quantile"]
    for s in payload["snippets"]:
        cat = s["cat"]
        n, h1 = len(cat["tokens"]["text"]), cat["n_heads"] + 1
        dist = unpack(cat["distance"], cat["distance_dtype"], (n, n))
        for layer, mask in enumerate(masks_of(cat)):
            idx = np.asarray(cat["kept_index"][cat["layer_group"][layer]])
            d = dist[np.ix_(idx, idx)]
            near = d < cat["theta_d"][cat["layer_group"][layer]]
            np.testing.assert_array_equal(near, d < np.quantile(d.astype(float), 1 - q))
            for col in range(h1):
                inter = np.count_nonzero(mask[col] & near)
                union = np.count_nonzero(mask[col] | near)
                sel = (lib.sample_id == s["id"]) & (lib.layer == layer) & (lib.head == col - 1)
                want = lib.score[sel][0]
                assert cat["scores"][layer][col] == pytest.approx(want, abs=1e-6)
                assert inter / union == pytest.approx(want, abs=1e-12)


def test_tokens_distances_and_attention_are_the_snippets(payload):
    model = tiny_model("roberta")
    extractor = Extractor(model, heads="all", hidden_states=False, max_subwords=256)
    for s in payload["snippets"]:
        cat, code = s["cat"], s["code"]
        texts = cat["tokens"]["text"]
        assert [code[a:b] for a, b in zip(cat["tokens"]["start"], cat["tokens"]["end"])] == texts
        tokens = parse(code, "python").tokens()
        pos = [tokens.start_char.tolist().index(a) for a in cat["tokens"]["start"]]
        n = len(pos)
        dist = unpack(cat["distance"], cat["distance_dtype"], (n, n))
        np.testing.assert_array_equal(dist, uast_distance(tokens)[np.ix_(pos, pos)])
        (result,) = extractor.extract([ModelInput.from_tokens(0, code, tokens)])
        full = result.attention.astype(np.float64)  # (L, H, n, n)
        stack = np.concatenate([full.mean(axis=1, keepdims=True), full], axis=1)
        att = unpack(cat["attention"], np.uint8, stack.shape) / 255.0
        scale = np.asarray(cat["attention_max"], dtype=np.float64)[..., None, None]
        np.testing.assert_allclose(att * scale, stack, atol=float(scale.max()) / 255 * 0.51 + 1e-6)


def test_sample_is_seeded_short_and_filled_with_the_shortest():
    first = choose_snippets(SNIPPETS, "python", max_snippets=6, max_tokens=60, seed=3)
    assert first == choose_snippets(SNIPPETS, "python", max_snippets=6, max_tokens=60, seed=3)
    assert first != choose_snippets(SNIPPETS, "python", max_snippets=6, max_tokens=60, seed=4)
    assert all(len(parse(c, "python").tokens()) <= 60 for _, c in first)
    order = [i for i, _ in SNIPPETS]
    assert [order.index(i) for i, _ in first] == sorted(order.index(i) for i, _ in first)
    # Only snippets over the limit: the shortest ones fill the sample.
    few = choose_snippets(SNIPPETS, "python", max_snippets=3, max_tokens=5, seed=0)
    sizes = sorted(len(parse(c, "python").tokens()) for _, c in SNIPPETS)
    assert sorted(len(parse(c, "python").tokens()) for _, c in few) == sizes[:3]


def test_other_settings_and_errors():
    model = tiny_model("roberta")
    p = explorer_payload(SNIPPETS[:3], language="python", model=model, distance="ast", types="all", max_snippets=None)
    cat = p["snippets"][0]["cat"]
    n = len(cat["tokens"]["text"])
    tokens = parse(SNIPPETS[0][1], "python").tokens()
    pos = [tokens.start_char.tolist().index(a) for a in cat["tokens"]["start"]]
    np.testing.assert_array_equal(
        unpack(cat["distance"], cat["distance_dtype"], (n, n)), ast_distance(tokens)[np.ix_(pos, pos)]
    )
    assert p["kept_types"] == [None] * cat["n_layers"] and cat["kept_index"][0] == list(range(n))
    json.dumps(p, allow_nan=False)  # JSON-able as it stands
    with pytest.raises(InputError):
        explorer_payload(["def f(:\n"], language="python", model=model)
    with pytest.raises(InputError):
        explorer_payload(SNIPPETS[:2], language="python", cat=False)


def test_trees_and_nonterminal_scores():
    code = "def f(a):\n    return a\n"
    tokens = parse(code, "python").tokens(collapse_strings=True)
    gold = (("module", 0, 7), ("function_definition", 0, 7), ("parameters", 2, 4), ("block", 6, 7))
    pred = (("module", 0, 7), ("function_definition", 0, 7), ("parameters", 2, 5), ("call", 6, 7))
    tree = RecoveredTree("x", tokens.texts, np.zeros(7), (), (), pred, gold, 0.5, 0.5, 0.5)
    p = explorer_payload([("x", code)], language="python", cat=False, trees=[tree], max_snippets=None)
    ast = p["snippets"][0]["astprobe"]
    assert [code[a:b] for a, b in zip(ast["tokens"]["start"], ast["tokens"]["end"])] == list(tokens.texts)
    assert ast["gold"] == [list(c) for c in gold] and ast["f1"] == 0.5
    rows = {r["label"]: r for r in nonterminal_scores([tree, tree])}
    assert rows["module"] == {"label": "module", "gold": 2, "predicted": 2, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert rows["parameters"]["precision"] == 0 and rows["parameters"]["gold"] == 2
    assert rows["block"]["predicted"] == 0 and rows["call"]["gold"] == 0 and rows["call"]["f1"] == 0


def test_pack_round_trips():
    a = np.arange(300, dtype=np.uint16).reshape(3, 100)
    np.testing.assert_array_equal(unpack(pack(a), np.uint16, a.shape), a)

"""The explorer's payload against the library it shows: CAT-scores, the masks the page counts,
distances, attention, tokens, the trees' per-non-terminal scores, and a run's chosen heads on
the snippets' relation edges (edges and rows against a fresh per-head pass)."""

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
from codeprobe.syntax import ast_distance, parse, relation_edges, uast_distance
from codeprobe.viz import choose_snippets, explorer_payload, nonterminal_scores
from codeprobe.viz.explorer import ChosenHead, ChosenHeads, pack, unpack

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


# ------------------------------------------------------------------ a run's chosen heads

SHOWN = (("head->dep", "first"), ("dep->head", "first"))


def chosen(relations: list[str], *, k: int = 1, max_subwords: int = 256, causal: bool = False) -> ChosenHeads:
    """Heads "chosen" for `relations` (all but the last two; the first of them has no head for
    dep->head), spread over the tiny model's 3 layers x 4 heads."""
    names = sorted(relations)[:-2]
    heads = tuple(
        tuple(
            ChosenHead(name, (i + s) % 3, (2 * i + s) % 4, 0.5, (0.25, 0.75), 10)
            for i, name in enumerate(names)
            if not (s == 1 and i == 0)
        )
        for s in range(len(SHOWN))
    )
    return ChosenHeads(k=k, scores=SHOWN, heads=heads, causal=causal, max_subwords=max_subwords)


def relations_of(items) -> list[str]:
    return sorted({n for _, code in items for n in relation_edges(parse(code, "python").tokens()).names})


def fresh_pass(items, max_subwords: int) -> dict:
    """id -> the inputs of a fresh `CATProbe(per_head=True)` pass, as the heads method reads."""
    probe = CATProbe(types="all", per_head=True, max_subwords=max_subwords)
    return {x.sample.sample_id: x for x in probe.inputs(items, tiny_model("roberta"), "python")}


def expected_edges(x, wanted: dict[str, int]) -> list[list[int]]:
    """The snippet's edges of the wanted relations over its kept tokens, by hand: an edge is kept
    when its head and every token of its dependent were read."""
    positions = list(np.asarray(x.sample.positions))
    at = {p: i for i, p in enumerate(positions)}
    e = relation_edges(x.tokens)
    out = []
    for name, h, s, t in zip(e.relation_names(), e.head.tolist(), e.dep_start.tolist(), e.dep_end.tolist()):
        if name in wanted and h in at and all(j in at for j in range(s, t)):
            out.append([wanted[name], at[h], at[s], at[t - 1] + 1])
    return sorted(out, key=lambda r: (r[1], r[2], r[3], r[0]))


def ranked(row: np.ndarray, attending: int, k: int, causal: bool = False) -> list[int]:
    cands = [j for j in range(row.size) if j != attending and (not causal or j <= attending)]
    return sorted(cands, key=lambda j: (-row[j], j))[:k]


def check_heads(p: dict, heads: ChosenHeads, fresh: dict) -> int:
    """Every snippet's edges and rows against `fresh` (a pass with the heads' input limit);
    returns how many rows were checked."""
    names = [r["name"] for r in p["heads"]["relations"]]
    assert names == heads.relations()
    wanted = {n: i for i, n in enumerate(names)}
    by_score = [{h.relation: h for h in per} for per in heads.heads]
    checked = 0
    for sn in p["snippets"]:
        x = fresh[sn["id"]]
        h = sn["heads"]
        att = np.asarray(x.sample.attention, dtype=np.float64)
        got = sorted((e[:4] for e in h["edges"]), key=lambda r: (r[1], r[2], r[3], r[0]))
        assert got == expected_edges(x, wanted)
        rows = {(r[0], r[1], r[2]): r for r in h["rows"]}
        needed = set()
        for r, head, s, _, hits in h["edges"]:
            for i, (direction, _) in enumerate(heads.scores):
                c = by_score[i].get(names[r])
                if c is None:
                    assert hits[i] is None
                    continue
                at, target = (head, s) if direction == "head->dep" else (s, head)
                needed.add((c.layer, c.head, at))
                top = ranked(att[c.layer, c.head, at], at, heads.k)
                assert hits[i] == (target in top)  # scorable: bidirectional, exclude_self
        assert set(rows) == needed  # only the rows the edges read
        for (layer, head, at), (_, _, _, weights, top) in rows.items():
            np.testing.assert_allclose(weights, att[layer, head, at], atol=0.5e-4 + 1e-9)
            assert top == ranked(att[layer, head, at], at, heads.k)
            checked += 1
    return checked


def test_heads_edges_and_rows_equal_a_fresh_per_head_pass(payload):
    items = [(i, c) for i, c in SNIPPETS]
    heads = chosen(relations_of(items), k=3)
    p = explorer_payload(SNIPPETS, language="python", model=tiny_model("roberta"), max_snippets=5, seed=1, heads=heads)
    assert [s["id"] for s in p["snippets"]] == [s["id"] for s in payload["snippets"]]
    # Without heads nothing of them is there; with them, the CAT view is unchanged.
    assert "heads" not in payload and not any("heads" in s for s in payload["snippets"])
    for a, b in zip(p["snippets"], payload["snippets"]):
        assert a["cat"] == b["cat"]
    info = p["heads"]
    assert (
        info["shared_pass"] and info["k"] == 3 and info["scores"][1] == {"direction": "dep->head", "dependent": "first"}
    )
    first = info["relations"][0]
    assert first["heads"][1] is None and first["heads"][0] == {
        "layer": 0,
        "head": 0,
        "test": 0.5,
        "test_ci": [0.25, 0.75],
        "test_edges": 10,
    }
    ids = {s["id"] for s in p["snippets"]}
    assert check_heads(p, heads, fresh_pass([(i, c) for i, c in SNIPPETS if i in ids], 256)) > 20
    assert all("tokens" not in s["heads"] for s in p["snippets"])  # the CAT view's tokens
    assert sum(len(s["heads"]["edges"]) for s in p["snippets"]) > 10
    json.dumps(p, allow_nan=False)


def test_heads_with_an_input_limit_of_their_own_read_the_snippets_again():
    items = SNIPPETS[:12]
    heads = chosen(relations_of(items), max_subwords=24, causal=True)
    p = explorer_payload(items, language="python", model=tiny_model("roberta"), max_snippets=4, heads=heads)
    assert not p["heads"]["shared_pass"] and p["heads"]["causal"]
    fresh = fresh_pass([(s["id"], s["code"]) for s in p["snippets"]], 24)
    for sn in p["snippets"]:
        x, h = fresh[sn["id"]], sn["heads"]
        assert h["tokens"]["text"] == list(x.labels) and len(h["tokens"]["text"]) < len(sn["cat"]["tokens"]["text"])
        code = sn["code"]
        assert [code[a:b] for a, b in zip(h["tokens"]["start"], h["tokens"]["end"])] == h["tokens"]["text"]
        for *_, at, _weights, top in h["rows"]:
            assert all(j < at for j in top)  # causal: only tokens left of the attending one
    assert sum(s["heads"]["dropped_edges"] for s in p["snippets"]) > 0  # edges past the cut
    # Heads alone (no CAT view, no trees) are something to explore too.
    alone = explorer_payload(
        items, language="python", model=tiny_model("roberta"), max_snippets=4, cat=False, heads=heads
    )
    assert alone["model"]["n_heads"] == 4 and all("cat" not in s for s in alone["snippets"])
    assert [s["heads"] for s in alone["snippets"]] == [s["heads"] for s in p["snippets"]]

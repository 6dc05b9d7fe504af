"""The vector cache, the estimator (fit / score / predict / save / load), sweeps, baselines and
the multilingual analyses, on a tiny random-weight model and a few real functions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from shared_data import cosqa_functions, java_methods

from codeprobe.errors import InputError
from codeprobe.model import Extractor, Snippet
from codeprobe.probes.astprobe import (
    ASTProbe,
    TrainConfig,
    code_tuple,
    fit_languages,
    layer_sweep,
    prepare_split,
    random_weights,
    rank_sweep,
    transfer,
    transfer_matrix,
)
from codeprobe.probes.astprobe import cache as cache_module
from codeprobe.probes.astprobe.sweeps import plot, table
from tiny_model import one_thread, tiny_model, tiny_model_dir  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")

QUICK = TrainConfig(max_epochs=2, lr=1e-2)


def _extractor(model, **kwargs):
    return Extractor(model, attention=False, vectors=True, length_policy="skip", **kwargs)


@pytest.fixture(scope="module")
def python_splits(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("vectors")
    items = cosqa_functions()[:90]
    ex = _extractor(tiny_model)
    return [prepare_split(items[a:b], "python", ex, root) for a, b in ((0, 60), (60, 75), (75, 90))], root


def test_cache_holds_the_model_vectors_and_is_reused(tiny_model, python_splits, monkeypatch):
    (train, _, _), root = python_splits
    assert train.cache.n_states == 3 and train.cache.hidden == 32
    layer = train.cache.layer(2)
    assert isinstance(layer, np.memmap) and layer.dtype == np.float16
    assert layer.shape == (sum(t.n_tokens for t in train.tuples), 32)
    # The cached rows are the extractor's vectors for the same tokens (in float16).
    t = train.tuples[3]
    direct = next(_extractor(tiny_model).extract(
        [Snippet(train.ids[3], train.codes[3], t.tokens.start_char, t.tokens.end_char)]))
    start = int(train.cache.lengths[:3].sum())
    np.testing.assert_allclose(layer[start : start + t.n_tokens], direct.vectors[2], atol=2e-3, rtol=2e-3)

    # The same snippets and model: the model is not run again.
    def boom(*args, **kwargs):
        raise AssertionError("the model ran again")

    monkeypatch.setattr(Extractor, "extract", boom)
    again = prepare_split(cosqa_functions()[:60], "python", _extractor(tiny_model), root)
    assert again.cache.path == train.cache.path and again.ids == train.ids
    with pytest.raises(AssertionError):  # other snippets need the model
        prepare_split(cosqa_functions()[100:105], "python", _extractor(tiny_model), root)


def test_snippets_that_do_not_fit_are_dropped_and_counted(tiny_model, tmp_path):
    items = [("broken", "def f(:\n"), ("one", "x"), *cosqa_functions()[:6]]
    split = prepare_split(items, "python", _extractor(tiny_model, max_subwords=60), tmp_path)
    assert split.dropped["parse_error"] == 1 and split.dropped["too_few_tokens"] == 1
    assert split.dropped["does_not_fit_model"] >= 1
    assert len(split) == 6 - split.dropped["does_not_fit_model"]
    assert split.cache.skipped and not set(split.cache.skipped) & set(split.ids)


def test_estimator_fit_score_predict_save_load(tiny_model, python_splits, tmp_path):
    (train, valid, test), root = python_splits
    probe = ASTProbe(rank=8, layer=1, model=tiny_model, cache_dir=root, config=QUICK)
    with pytest.raises(InputError):
        probe.score(cosqa_functions()[75:90])
    probe.fit_splits(train, valid)
    scores = probe.evaluate_split(test)
    assert 0.0 <= scores.f1 <= 1.0 and 0.0 <= scores.d_pairs <= 1.0
    # The public route over the same snippets gives the same numbers (from the same cache).
    assert probe.score(cosqa_functions()[75:90]) == pytest.approx(scores.f1)

    trees = probe.predict(cosqa_functions()[75:77])
    assert sorted(t.id for t in trees) == sorted(i for i, _ in cosqa_functions()[75:77])
    t = trees[0]
    assert len(t.d) == len(t.tokens) - 1 and len(t.u) == len(t.tokens)
    assert t.f1 == pytest.approx(scores.per_snippet.f1[test.ids.index(t.id)])
    assert t.gold and all(0 <= lo <= hi < len(t.tokens) for _, lo, hi in t.gold)

    saved = probe.save(tmp_path / "probe")
    settings = json.loads((saved / "probe.json").read_text())
    assert settings["layer"] == 1 and settings["rank"] == 8 and settings["language"] == "python"
    assert settings["grammars"]["python"]["package"] == "tree-sitter-python"
    assert settings["vocabularies"]["python"]["c"][0] == "<unk>"
    loaded = ASTProbe.load(saved, model=tiny_model, cache_dir=root)
    assert torch.equal(loaded.module_.proj, probe.module_.proj)
    again = loaded.evaluate_split(test)
    assert again.f1 == scores.f1 and again.acc_c == scores.acc_c


def test_fit_holds_out_validation_and_checks_the_layer(tiny_model, python_splits):
    _, root = python_splits
    probe = ASTProbe(rank=4, layer=0, model=tiny_model, cache_dir=root, config=TrainConfig(max_epochs=1))
    probe.fit([code for _, code in cosqa_functions()[:20]])
    assert probe.fit_result_.best_epoch == 1
    with pytest.raises(InputError):
        ASTProbe(layer=7, model=tiny_model, cache_dir=root).fit(cosqa_functions()[:20])


def test_sweeps_tables_and_plots(python_splits, tmp_path):
    (train, valid, test), _ = python_splits
    layers = layer_sweep(train, valid, test, [0, 2], rank=8, config=QUICK, save_dir=tmp_path / "p")
    assert [p.layer for p in layers] == [0, 2] and all(p.scores is not None for p in layers)
    assert (tmp_path / "p" / "layer_02_rank_008" / "probe.safetensors").exists()
    ranks = rank_sweep(train, valid, test, 1, ranks=(2, 4, 64), config=QUICK)
    assert [p.rank for p in ranks] == [2, 4]  # 64 > hidden size 32
    assert table(layers).count("\n") == 3
    assert plot({"tiny": layers}, "layer", tmp_path / "f1.png", reference={"emb": 0.1}).stat().st_size > 0
    row = layers[0].as_dict()
    assert {"layer", "precision", "recall", "f1"} <= set(row)


def test_random_weights_baseline(tiny_model):
    a, b = random_weights(tiny_model, seed=1), random_weights(tiny_model, seed=1)
    c = random_weights(tiny_model, seed=2)
    sa, sb, sc = a.model.state_dict(), b.model.state_dict(), c.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    real = tiny_model.model.state_dict()
    emb = [k for k in sa if k.startswith("embeddings.")]
    assert emb and all(torch.equal(sa[k], real[k]) for k in emb)
    layer = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(sa[layer], real[layer]) and not torch.equal(sa[layer], sc[layer])
    assert "random weights" in a.info.name


def test_shared_projection_and_direct_transfer(tiny_model, python_splits, tmp_path):
    (py_train, py_valid, py_test), _ = python_splits
    ex = _extractor(tiny_model)
    java = java_methods(60)
    j_train, j_valid, j_test = (prepare_split(java[a:b], "java", ex, tmp_path) for a, b in ((0, 40), (40, 50), (50, 60)))
    shared = fit_languages({"python": py_train, "java": j_train}, {"python": py_valid, "java": j_valid},
                           layer=1, rank=8, config=QUICK)
    assert set(shared.module.vectors_c) == {"python", "java"}
    per = shared.evaluate({"python": py_test, "java": j_test})
    assert set(per) == {"python", "java"}

    mono = {
        "python": fit_languages({"python": py_train}, {"python": py_valid}, layer=1, rank=8, config=QUICK),
        "java": fit_languages({"java": j_train}, {"java": j_valid}, layer=1, rank=8, config=QUICK),
    }
    moved = transfer(mono["python"], mono["java"], "java")
    assert torch.equal(moved.module.proj, mono["python"].module.proj)
    b_s, b_t = mono["python"].module.proj, mono["java"].module.proj
    want = b_s.T @ b_t @ mono["java"].module.vectors_c["java"]
    torch.testing.assert_close(moved.module.vectors_c["java"], want.detach())
    # Transferring a probe onto itself changes nothing but the label vectors' basis.
    matrix = transfer_matrix(mono, {"python": py_test, "java": j_test})
    assert set(matrix) == {"python", "java"} and set(matrix["python"]) == {"python", "java"}
    assert matrix["java"]["java"] == pytest.approx(mono["java"].evaluate({"java": j_test})["java"].f1)


def test_cache_format_is_checked(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(InputError):
        cache_module.VectorCache.open(tmp_path)


def test_code_tuple_tokens_feed_the_extractor():
    t = code_tuple("def f(a):\n    return 'x y'\n", "python")
    assert t.tokens.start_char.dtype == np.int64 and len(t.tokens.end_char) == t.n_tokens

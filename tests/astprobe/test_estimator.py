"""The hidden-state cache, the estimator (fit / score / predict / save / load, scikit-learn's
contract), sweeps, baselines and the multilingual analyses, on a tiny random-weight model and a
few real functions."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from shared_data import cosqa_functions, java_methods
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted
from tiny_model import one_thread, tiny_model, tiny_model_dir  # noqa: F401  (fixtures)

from codeprobe.errors import InputError, UnknownLanguageError
from codeprobe.model import Extractor, ModelInput
from codeprobe.probes.astprobe import (
    ASTProbe,
    LabelVocab,
    LanguageProbe,
    ProbeModule,
    TrainConfig,
    code_tuple,
    fit_languages,
    prepare_split,
    random_weights,
    sweep,
    transfer,
    transfer_matrix,
)
from codeprobe.probes.astprobe import cache as cache_module

pytestmark = pytest.mark.usefixtures("one_thread")

QUICK = TrainConfig(max_epochs=2, lr=1e-2)


def _extractor(model, **kwargs):
    return Extractor(model, attention=False, hidden_states=True, length_policy="skip", **kwargs)


@pytest.fixture(scope="module")
def python_splits(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("hidden_states")
    items = cosqa_functions()[:90]
    ex = _extractor(tiny_model)
    return [prepare_split(items[a:b], "python", ex, root) for a, b in ((0, 60), (60, 75), (75, 90))], root


def test_cache_holds_the_model_hidden_states_and_is_reused(tiny_model, python_splits, monkeypatch):
    (train, _, _), root = python_splits
    assert train.cache.n_states == 3 and train.cache.hidden == 32
    state = train.cache.hidden_state(2)
    assert isinstance(state, np.memmap) and state.dtype == np.float16
    assert state.shape == (sum(t.n_tokens for t in train.tuples), 32)
    # The cached rows are the extractor's hidden states for the same tokens (in float16).
    t = train.tuples[3]
    direct = next(_extractor(tiny_model).extract([ModelInput.from_tokens(train.ids[3], train.codes[3], t.tokens)]))
    start = int(train.cache.lengths[:3].sum())
    np.testing.assert_allclose(state[start : start + t.n_tokens], direct.hidden_states[2], atol=2e-3, rtol=2e-3)

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
    probe = ASTProbe(rank=8, hidden_state=1, cache_dir=root, config=QUICK)
    with pytest.raises(InputError):
        probe.score(cosqa_functions()[75:90])
    probe.fit_splits(train, valid, model=tiny_model)
    assert probe.model_ is tiny_model and probe.language_ == "python"
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
    assert settings["hidden_state"] == 1 and "layer" not in settings and settings["format"] == 2
    assert settings["rank"] == 8 and settings["language"] == "python"
    assert settings["grammars"]["python"]["package"] == "tree-sitter-python"
    assert settings["vocabularies"]["python"]["c"][0] == "<unk>"
    assert settings["training"]["best_epoch"] == probe.fit_result_.best_epoch
    names = sorted(p.name for p in saved.iterdir())
    # the files, their integrity records, and no temporary left
    assert names == [".probe.json.sum", ".probe.safetensors.sum", "probe.json", "probe.safetensors"]
    loaded = ASTProbe.load(saved, model=tiny_model, cache_dir=root)
    assert torch.equal(loaded.module_.proj, probe.module_.proj)
    assert loaded.model_ is tiny_model and loaded.get_params() == probe.get_params()
    again = loaded.evaluate_split(test)
    assert again.f1 == scores.f1 and again.acc_c == scores.acc_c
    # The model the probe reads new snippets with is the fitted one, after load as after fit.
    assert loaded.score(cosqa_functions()[75:90]) == pytest.approx(scores.f1)

    # A probe saved before `layer` became `hidden_state` (probe.json format 1) loads the same.
    old = shutil.copytree(saved, tmp_path / "old-probe")
    old_settings = {("layer" if k == "hidden_state" else k): v for k, v in settings.items()}
    (old / "probe.json").write_text(json.dumps({**old_settings, "format": 1}))
    legacy = ASTProbe.load(old, model=tiny_model, cache_dir=root)
    assert legacy.hidden_state == 1 and legacy.get_params() == probe.get_params()
    assert legacy.evaluate_split(test).f1 == scores.f1


def test_estimator_follows_scikit_learns_contract(tiny_model, python_splits):
    (train, valid, test), root = python_splits
    probe = ASTProbe(rank=8, hidden_state=1, language="Python", cache_dir=str(root), config=QUICK)
    # __init__ stores its arguments untouched; get_params gives them back.
    assert probe.language == "Python" and probe.cache_dir == str(root)
    assert probe.get_params() == {
        "rank": 8,
        "hidden_state": 1,
        "language": "Python",
        "random_state": 0,
        "config": QUICK,
        "validation_fraction": 0.1,
        "cache_dir": str(root),
        "device": None,
        "extraction_batch_size": 16,
        "remove_docstrings": False,
        "drop_line_continuations": False,
        "model_input": "source",
    }
    # ... and checks nothing: bad settings fail when the probe runs, with typed errors.
    for bad, error in (
        ({"rank": 0}, InputError),
        ({"hidden_state": -1}, InputError),
        ({"hidden_state": 7}, InputError),
        ({"language": "klingon"}, UnknownLanguageError),
        ({"model_input": "tokens"}, InputError),
        ({"validation_fraction": 1.0}, InputError),
        ({"config": {"lr": 1e-2}}, InputError),
    ):
        with pytest.raises(error):
            clone(probe).set_params(**bad).fit_splits(train, valid, model=tiny_model)
    with pytest.raises(InputError, match="not fitted"):
        probe.predict_split(test)

    probe.fit_splits(train, valid, model=tiny_model)
    check_is_fitted(probe)
    assert probe.language_ == "python" and probe.model_ is tiny_model
    # clone: the same settings, unfitted, and no model to copy (the model is fit's, not a parameter).
    copy = clone(probe)
    assert copy.get_params() == probe.get_params() and copy.config is not probe.config
    assert not hasattr(copy, "module_") and not hasattr(copy, "model_")
    copy.set_params(hidden_state=2, rank=4).fit_splits(train, valid, model=tiny_model)
    assert copy.module_.rank == 4 and probe.module_.rank == 8 and probe.hidden_state == 1
    # A clone with the same settings trains the same probe.
    twin = clone(probe).fit_splits(train, valid, model=tiny_model)
    assert torch.equal(twin.module_.proj, probe.module_.proj)
    assert twin.evaluate_split(test).f1 == probe.evaluate_split(test).f1
    # A split of another language, or prepared with other switches, is refused.
    with pytest.raises(InputError, match="switch|remove_docstrings"):
        clone(probe).set_params(remove_docstrings=True).fit_splits(train, valid, model=tiny_model)


def test_grid_search_clones_the_probe_and_shares_the_model(tiny_model, python_splits):
    """scikit-learn's model selection runs on the probe as on any estimator: it clones the probe
    per candidate and fold, and the model, a `fit` argument, reaches every clone uncopied."""
    from sklearn.model_selection import GridSearchCV

    _, root = python_splits
    search = GridSearchCV(
        ASTProbe(rank=4, hidden_state=1, cache_dir=root, config=QUICK), {"hidden_state": [0, 2]}, cv=2
    )
    search.fit([code for _, code in cosqa_functions()[:30]], model=tiny_model)
    assert search.best_params_["hidden_state"] in (0, 2) and search.best_estimator_.model_ is tiny_model
    assert np.all((search.cv_results_["mean_test_score"] >= 0) & (search.cv_results_["mean_test_score"] <= 1))
    assert search.best_estimator_.hidden_state == search.best_params_["hidden_state"]


def test_fit_holds_out_validation_and_checks_the_hidden_state(tiny_model, python_splits, monkeypatch):
    _, root = python_splits
    items = cosqa_functions()[:20]
    seen = []
    fit_splits = ASTProbe.fit_splits

    def spy(self, train, valid, **kwargs):
        seen.append((train, valid))
        return fit_splits(self, train, valid, **kwargs)

    monkeypatch.setattr(ASTProbe, "fit_splits", spy)
    config = TrainConfig(max_epochs=4, lr=1e-2)
    probe = ASTProbe(rank=4, hidden_state=0, cache_dir=root, config=config, validation_fraction=0.25)
    probe.fit([code for _, code in items], model=tiny_model)
    ASTProbe(rank=4, hidden_state=0, cache_dir=root, config=config, validation_fraction=0.25, random_state=1).fit(
        [code for _, code in items], model=tiny_model
    )
    (train, valid), (_, other_valid) = seen
    # A quarter of the snippets (ids "0".."19": plain strings) is held out, the rest trains.
    assert len(train) + sum(train.dropped.values()) == 15 and len(valid) + sum(valid.dropped.values()) == 5
    assert set(train.ids).isdisjoint(valid.ids)
    used = set(train.ids) | set(valid.ids) | set(train.cache.skipped) | set(valid.cache.skipped)
    assert used <= {str(k) for k in range(20)}
    assert set(valid.ids) != set(other_valid.ids)  # the share depends on random_state
    # Early stopping read the held-out share: the kept checkpoint's loss on it is the best one.
    assert probe.fit_result_.epochs == 4
    assert probe.evaluate_split(valid).loss == pytest.approx(probe.fit_result_.best_valid_loss, rel=1e-5)
    best = min(r.valid_loss for r in probe.fit_result_.history)
    assert probe.fit_result_.best_valid_loss == pytest.approx(best, rel=1e-9)
    with pytest.raises(InputError, match="hidden state 7"):
        ASTProbe(hidden_state=7, cache_dir=root).fit(cosqa_functions()[:20], model=tiny_model)


def test_sweep_returns_fitted_probes(tiny_model, python_splits, tmp_path):
    (train, valid, test), root = python_splits
    points = sweep(
        train,
        valid,
        test,
        [(0, 8), (2, 8), (1, 4)],
        config=QUICK,
        save_dir=tmp_path / "p",
        model=str(tiny_model.info.name),
    )
    assert [(p.hidden_state, p.rank) for p in points] == [(0, 8), (2, 8), (1, 4)]
    for point in points:
        probe = point.probe
        assert isinstance(probe, ASTProbe) and (probe.hidden_state, probe.rank) == (point.hidden_state, point.rank)
        check_is_fitted(probe)
        assert probe.fit_result_.best_epoch == point.best_epoch and probe.language_ == "python"
        assert probe.evaluate_split(test).f1 == point.scores.f1
        assert probe.evaluate_split(valid).f1 == point.valid_scores.f1
    saved = ASTProbe.load(tmp_path / "p" / "hidden_state_02_rank_008", model=tiny_model, cache_dir=root)
    assert torch.equal(saved.module_.proj.cpu(), points[1].probe.module_.proj.cpu())
    assert saved.evaluate_split(test).f1 == points[1].scores.f1
    row = points[0].as_dict()
    assert {"hidden_state", "precision", "recall", "f1"} <= set(row) and "probe" not in row and "layer" not in row
    # A training result and the split it did not train on (or another rank) do not make a probe.
    result = points[0].probe.fit_result_
    with pytest.raises(InputError, match="rank"):
        ASTProbe.from_fit_result(result, train, rank=4, hidden_state=0)
    java = prepare_split(java_methods(12), "java", _extractor(tiny_model), tmp_path / "java")
    with pytest.raises(InputError):
        ASTProbe.from_fit_result(result, java, rank=8, hidden_state=0)


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
    j_train, j_valid, j_test = (
        prepare_split(java[a:b], "java", ex, tmp_path) for a, b in ((0, 40), (40, 50), (50, 60))
    )
    shared = fit_languages(
        {"python": py_train, "java": j_train},
        {"python": py_valid, "java": j_valid},
        hidden_state=1,
        rank=8,
        config=QUICK,
    )
    assert set(shared.module.vectors_c) == {"python", "java"}
    per = shared.evaluate({"python": py_test, "java": j_test})
    assert set(per) == {"python", "java"}

    mono = {
        "python": fit_languages({"python": py_train}, {"python": py_valid}, hidden_state=1, rank=8, config=QUICK),
        "java": fit_languages({"java": j_train}, {"java": j_valid}, hidden_state=1, rank=8, config=QUICK),
    }
    moved = transfer(mono["python"], mono["java"], "java")
    assert torch.equal(moved.module.proj, mono["python"].module.proj)
    assert moved.vocabs == {"java": mono["java"].vocabs["java"]}
    # out[source][target]: Python's projection with Java's label vectors, scored on Java's test split.
    matrix = transfer_matrix(mono, {"python": py_test, "java": j_test})
    assert set(matrix) == {"python", "java"} and set(matrix["python"]) == {"python", "java"}
    assert matrix["python"]["java"] == pytest.approx(moved.evaluate({"java": j_test})["java"].f1)
    assert all(0.0 <= f1 <= 1.0 for row in matrix.values() for f1 in row.values())


def _language_probe(proj, vectors_c, vectors_u, language="java"):
    c = LabelVocab(("<unk>", *(f"c{k}" for k in range(1, len(vectors_c[0])))))
    u = LabelVocab(("<unk>", *(f"u{k}" for k in range(1, len(vectors_u[0])))))
    module = ProbeModule(len(proj), len(proj[0]), {language: (len(c), len(u))})
    with torch.no_grad():
        module.proj.copy_(torch.tensor(proj, dtype=torch.float32))
        module.vectors_c[language].copy_(torch.tensor(vectors_c, dtype=torch.float32))
        module.vectors_u[language].copy_(torch.tensor(vectors_u, dtype=torch.float32))
    return LanguageProbe(module, {language: (c, u)}, hidden_state=1)


def test_direct_transfer_hand_worked_example():
    """Hidden size 3, rank 2. The source projects hidden dims (0, 1); the target projects
    (1, 0), twice as long, so a target label direction in hidden space, B_T v, is v's entries
    swapped and doubled; seen through the source's projection, that is V' = B_S^T B_T V_T,
    worked out by hand below. Hidden dim 2 is invisible to both."""
    source = _language_probe([[1, 0], [0, 1], [0, 0]], [[0, 0], [0, 0]], [[0], [0]])
    target = _language_probe([[0, 2], [2, 0], [0, 0]], [[1, 2, 3], [4, 5, 6]], [[7, 0], [0, 8]])
    moved = transfer(source, target, "java").module
    torch.testing.assert_close(moved.proj, source.module.proj)
    torch.testing.assert_close(moved.vectors_c["java"], torch.tensor([[8.0, 10, 12], [2, 4, 6]]))
    torch.testing.assert_close(moved.vectors_u["java"], torch.tensor([[0.0, 16], [14, 0]]))
    # The label scores of a hidden state are the target's: h B_S V' = h B_T V_T for h in span(e0, e1).
    h = torch.tensor([[0.5, -1.5, 0.0]])
    torch.testing.assert_close(
        h @ moved.proj @ moved.vectors_c["java"], h @ target.module.proj @ target.module.vectors_c["java"]
    )
    with pytest.raises(InputError):
        transfer(source, _language_probe([[1], [0], [0]], [[1, 2]], [[1, 2]]), "java")


def test_cache_format_is_checked(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(InputError):
        cache_module.HiddenStateCache.open(tmp_path)


def test_code_tuple_tokens_feed_the_extractor():
    t = code_tuple("def f(a):\n    return 'x y'\n", "python")
    assert t.tokens.start_char.dtype == np.int64 and len(t.tokens.end_char) == t.n_tokens

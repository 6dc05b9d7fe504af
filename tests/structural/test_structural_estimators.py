"""The structural probes' estimator contract: save and load (safetensors + JSON, no pickle),
scikit-learn's clone and parameters, and bad input raising `InputError` with a clear message."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.base import clone
from synthetic_trees import expression_trees

from codeprobe.errors import InputError
from codeprobe.probes.structural import (
    DepthProbe,
    DistanceProbe,
    StackedDepthProbe,
    StackedDistanceProbe,
    StructuralTrainConfig,
)

HIDDEN = 12
QUICK = StructuralTrainConfig(max_epochs=3, threads=1)


@pytest.fixture(scope="module")
def data():
    trees = expression_trees(30, seed=11)
    rng = np.random.default_rng(0)
    return [rng.normal(size=(2, len(t), HIDDEN)).astype(np.float32) for t in trees], trees


@pytest.mark.parametrize("cls", [DistanceProbe, DepthProbe, StackedDistanceProbe, StackedDepthProbe])
def test_save_and_load_round_trip(data, tmp_path, cls):
    X, trees = data
    X = X if cls in (StackedDistanceProbe, StackedDepthProbe) else [x[1] for x in X]
    params = {"rank": 5, "random_state": 2, "config": QUICK, "validation_fraction": 0.2}
    if cls in (DistanceProbe, StackedDistanceProbe):
        params["target"] = "ast"
    probe = cls(**params).fit(X, trees)
    folder = probe.save(tmp_path / "probe")
    assert sorted(p.name for p in folder.iterdir()) == [
        ".probe.json.sum",
        ".probe.safetensors.sum",
        "probe.json",
        "probe.safetensors",
    ]
    settings = json.loads((folder / "probe.json").read_text())
    assert settings["estimator"] == cls.__name__ and settings["params"]["rank"] == 5
    assert settings["params"]["config"]["max_epochs"] == 3 and settings["head_rule"] == "first-token"
    loaded = cls.load(folder)
    assert loaded.get_params() == probe.get_params()
    assert np.array_equal(loaded.proj_, probe.proj_) and loaded.proj_.dtype == np.float32
    records = (
        (loaded.fit_results_, probe.fit_results_)
        if hasattr(probe, "fit_results_")
        else (loaded.fit_result_, probe.fit_result_)
    )
    assert records[0] == records[1]
    for p, q in zip(loaded.predict(X[:3]), probe.predict(X[:3])):
        assert np.array_equal(p, q)
    assert np.array_equal(np.asarray(loaded.score(X, trees)), np.asarray(probe.score(X, trees)))


def test_load_refuses_another_kind_of_probe(data, tmp_path):
    X, trees = data
    DepthProbe(rank=3, config=QUICK).fit([x[0] for x in X], trees).save(tmp_path / "depth")
    with pytest.raises(InputError, match="holds a DepthProbe: load it with that class"):
        DistanceProbe.load(tmp_path / "depth")


def test_scikit_learn_contract(data):
    X, trees = data
    probe = DistanceProbe(rank=4, target="ast", config=QUICK, random_state=9)
    assert probe.get_params() == {
        "rank": 4,
        "target": "ast",
        "random_state": 9,
        "config": QUICK,
        "validation_fraction": 0.1,
    }
    copy = clone(probe)
    assert copy.get_params() == probe.get_params() and not hasattr(copy, "proj_")
    fitted = probe.fit([x[0] for x in X], trees)
    assert fitted is probe and probe.n_features_in_ == HIDDEN and probe.rank_ == 4
    assert set(StackedDepthProbe().get_params()) == {"rank", "random_state", "config", "validation_fraction"}


def _bad_inputs(X, trees):
    """(X, y, expected message) of inputs that every probe must refuse."""
    one = [x[0] for x in X]
    return [
        ([*one[:3], one[3][:, :5]], trees[:4], "snippet 3 has 1 hidden states of width 5, snippet 0 1 of width 12"),
        ([*one[:2], np.zeros((0, HIDDEN), np.float32)], trees[:3], "snippet 2 has 0 tokens"),
        ([*one[:2], np.zeros((1, HIDDEN), np.float32)], trees[:3], "snippet 2 has 1 tokens"),
        ([one[0], one[1][:-1]], trees[:2], "snippet 1: .* token vectors for a gold tree of"),
        (one[:3], trees[:2], "3 snippets of token vectors but 2 gold trees"),
        ([one[0], one[1].astype(np.int64)], trees[:2], "snippet 1: token vectors must be a float array"),
        ([one[0], np.full_like(one[1], np.nan)], trees[:2], "snippet 1: token vectors must be finite"),
        ([one[0], one[1][None]], trees[:2], r"must be a float array \(n, hidden\)"),
        (one[:2], [trees[0], "def f(): pass"], "gold tree 1 must be a TokenTree"),
        ([], [], "X holds no snippet"),
        ("def f(): pass", trees[:1], "X must be a sequence of per-snippet arrays"),
    ]


@pytest.mark.parametrize("cls", [DistanceProbe, DepthProbe])
def test_bad_input_raises_input_error(data, cls):
    X, trees = data
    for bad_X, bad_y, message in _bad_inputs(X, trees):
        with pytest.raises(InputError, match=message):
            cls(config=QUICK).fit(bad_X, bad_y)
    fitted = cls(rank=3, config=QUICK).fit([x[0] for x in X], trees)
    for bad_X, bad_y, message in _bad_inputs(X, trees):
        with pytest.raises(InputError, match=message):
            fitted.evaluate(bad_X, bad_y)
    with pytest.raises(InputError, match="fitted on 1 hidden state.* of width 12, X has 1 of width 5"):
        fitted.predict([x[0][:, :5] for x in X])


def test_stacked_inputs_must_agree_on_hidden_states(data):
    X, trees = data
    ragged = [X[0], X[1][:1]]
    with pytest.raises(InputError, match="snippet 1 has 1 hidden states of width 12, snippet 0 2 of width 12"):
        StackedDistanceProbe(config=QUICK).fit(ragged, trees[:2])
    with pytest.raises(InputError, match=r"must be a float array \(L, n, hidden\)"):
        StackedDepthProbe(config=QUICK).fit([x[0] for x in X], trees)
    stacked = StackedDepthProbe(rank=2, config=QUICK).fit(X, trees)
    with pytest.raises(InputError, match="fitted on 2 hidden state"):
        stacked.predict([x[:1] for x in X])
    with pytest.raises(InputError, match="hidden state 2 is not in 0..1"):
        stacked.select(2)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"rank": 0}, "rank must be None .* or an integer >= 1"),
        ({"target": "uast"}, "target must be one of 'token_tree', 'ast'"),
        ({"validation_fraction": 1.0}, r"validation_fraction must lie in \(0, 1\)"),
        ({"random_state": 1.5}, "random_state must be an integer"),
        ({"config": {"lr": 1e-3}}, "config must be a StructuralTrainConfig"),
    ],
)
def test_bad_hyperparameters_raise_when_fitting(data, params, message):
    X, trees = data
    probe = DistanceProbe(**params)  # scikit-learn's contract: stored as given
    with pytest.raises(InputError, match=message):
        probe.fit([x[0] for x in X], trees)


def test_other_refusals(data):
    X, trees = data
    one = [x[0] for x in X]
    with pytest.raises(InputError, match="not fitted yet"):
        DistanceProbe().predict(one)
    with pytest.raises(InputError, match="give both X_valid and y_valid"):
        DistanceProbe(config=QUICK).fit(one, trees, X_valid=one)
    with pytest.raises(InputError, match="too few to hold out"):
        DistanceProbe(config=QUICK).fit(one[:1], trees[:1])
    with pytest.raises(InputError, match="StructuralTrainConfig.batch_size must be an integer >= 1"):
        StructuralTrainConfig(batch_size=0)
    with pytest.raises(InputError, match=r"StructuralTrainConfig.lr_factor must be a number in \(0, 1\)"):
        StructuralTrainConfig(lr_factor=1.0)
    with pytest.raises(InputError, match="metrics are 'uuas' and 'dspr'"):
        DistanceProbe(rank=2, config=QUICK).fit(one, trees).evaluate(one, trees).interval("nspr")


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

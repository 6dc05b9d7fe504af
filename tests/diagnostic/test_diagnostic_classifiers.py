"""Diagnostic classifiers: softmax regression learns a class that the vectors carry and not one
they do not, every hidden state trained at once equals each alone, the scikit-learn contract,
files, bad input, and the accuracy and selectivity bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.base import clone
from synthetic_tokens import snippets

from codeprobe.errors import InputError
from codeprobe.probes.diagnostic import (
    AccuracyEvaluation,
    DiagnosticClassifier,
    StackedDiagnosticClassifier,
    selectivity,
)
from codeprobe.probes.structural import StructuralTrainConfig

QUICK = StructuralTrainConfig(lr=0.01, max_epochs=15, threads=1)


@pytest.fixture(scope="module")
def data():
    X, y = snippets(120, seed=0)
    X_test, y_test = snippets(60, seed=1)
    return X, y, X_test, y_test


@pytest.fixture(scope="module")
def stacked(data):
    X, y, *_ = data
    return StackedDiagnosticClassifier(n_classes=3, config=QUICK).fit(X, y)


def test_signal_is_learnt_and_noise_is_not(stacked, data):
    *_, X_test, y_test = data
    noise, signal = stacked.score(X_test, y_test)
    majority = np.mean([np.mean(t == 0) for t in y_test])  # class 0: CLASS_P's largest
    assert signal > 0.95
    assert abs(noise - majority) < 0.05 and noise < 0.6
    assert stacked.fit_results_[1].best_epoch > 0
    for record in stacked.fit_results_:
        assert record.initial_valid_loss == pytest.approx(math.log(3))  # zero start: uniform
        assert record.best_valid_loss <= record.initial_valid_loss


def test_stacked_equals_each_hidden_state_alone(stacked, data):
    X, y, X_test, y_test = data
    for s in range(2):
        alone = DiagnosticClassifier(n_classes=3, config=QUICK).fit([x[s] for x in X], y)
        np.testing.assert_allclose(alone.coef_, stacked.coef_[s], rtol=1e-4, atol=1e-5)
        assert alone.fit_result_.best_epoch == stacked.fit_results_[s].best_epoch
        selected = stacked.select(s)
        assert selected.score([x[s] for x in X_test], y_test) == pytest.approx(stacked.score(X_test, y_test)[s])


def test_predictions_are_probabilities_and_their_argmax(stacked, data):
    *_, X_test, _ = data
    proba = stacked.predict_proba(X_test[:3])
    assert proba[0].shape == (2, len(X_test[0][0]), 3)
    np.testing.assert_allclose(proba[0].sum(-1), 1.0)
    assert all((p.argmax(-1) == q).all() for p, q in zip(proba, stacked.predict(X_test[:3])))


def test_sklearn_contract_and_files(stacked, data, tmp_path):
    *_, X_test, y_test = data
    params = stacked.get_params()
    assert params["n_classes"] == 3 and params["config"] is QUICK
    copy = clone(stacked)
    assert copy.get_params() == params and not hasattr(copy, "coef_")
    stacked.save(tmp_path / "clf")
    loaded = StackedDiagnosticClassifier.load(tmp_path / "clf")
    np.testing.assert_array_equal(loaded.coef_, stacked.coef_)
    assert loaded.fit_results_ == stacked.fit_results_ and loaded.get_params() == params
    np.testing.assert_array_equal(loaded.score(X_test, y_test), stacked.score(X_test, y_test))
    with pytest.raises(InputError, match="StackedDiagnosticClassifier"):
        DiagnosticClassifier.load(tmp_path / "clf")


def test_n_classes_from_the_labels(data):
    X, y, *_ = data
    clf = DiagnosticClassifier(config=StructuralTrainConfig(max_epochs=1, threads=1)).fit([x[1] for x in X], y)
    assert clf.n_classes_ == 3 and clf.coef_.shape == (13, 3) and clf.n_features_in_ == 12


def test_bad_input_is_refused(stacked, data):
    X, y, X_test, _ = data
    fit = StackedDiagnosticClassifier(n_classes=3, config=QUICK).fit
    with pytest.raises(InputError, match="label arrays"):
        fit(X, y[:-1])
    with pytest.raises(InputError, match="snippet 0: labels must be"):
        fit(X, [t.astype(float) for t in y])
    with pytest.raises(InputError, match="class ids must lie in 0..2"):
        fit(X, [t + 1 for t in y])
    with pytest.raises(InputError, match="both X_valid and y_valid"):
        fit(X, y, X_valid=X)
    with pytest.raises(InputError, match="n_classes"):
        StackedDiagnosticClassifier(n_classes=1).fit(X, y)
    with pytest.raises(InputError, match="not fitted"):
        DiagnosticClassifier().predict([x[0] for x in X])
    with pytest.raises(InputError, match="fitted on 2 hidden state"):
        stacked.predict([x[:1] for x in X_test])


def test_accuracy_bookkeeping_by_hand():
    gold = np.array([0, 1, 1, 2, 0, 0])
    predicted = np.array([0, 1, 0, 2, 2, 0])
    e = AccuracyEvaluation.from_predictions(predicted, gold, np.array([0, 3, 6]))
    assert e.correct.tolist() == [2, 2] and e.tokens.tolist() == [3, 3]
    assert e.accuracy == pytest.approx(2 / 3) and e.token_accuracy == pytest.approx(4 / 6)
    uneven = AccuracyEvaluation(correct=np.array([1, 9]), tokens=np.array([1, 10]))
    assert uneven.accuracy == pytest.approx(0.95) and uneven.token_accuracy == pytest.approx(10 / 11)


def test_selectivity_is_the_paired_difference_over_snippets():
    rng = np.random.default_rng(0)
    tokens = rng.integers(5, 40, size=200)
    task = AccuracyEvaluation(correct=rng.binomial(tokens, 0.9), tokens=tokens)
    control = AccuracyEvaluation(correct=rng.binomial(tokens, 0.6), tokens=tokens)
    s = selectivity(task, control)
    assert s.mean == pytest.approx(task.accuracy - control.accuracy)
    assert s.low < s.mean < s.high and s.excludes_zero and s.n == 200
    assert not selectivity(task, task).excludes_zero
    with pytest.raises(InputError, match="same test snippets"):
        selectivity(task, AccuracyEvaluation(correct=tokens[:-1], tokens=tokens[:-1]))

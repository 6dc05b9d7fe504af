"""Diagnostic classifiers as scikit-learn estimators: softmax regression from a token's vector
to its label (Hewitt & Liang, EMNLP 2019, arXiv:1909.03368), on one hidden state or on all of
them at once (stacked).

    clf = DiagnosticClassifier(random_state=0).fit(X, y)   # X: (n, hidden), y: (n,) ids per snippet
    clf.predict(X_test)                                    # (n,) class ids per snippet
    clf.evaluate(X_test, y_test).interval()                # accuracy over snippets, 95% interval
    clf.save("runs/parent"); DiagnosticClassifier.load("runs/parent")

    stacked = StackedDiagnosticClassifier().fit(X, y)       # X: (L, n, hidden) per snippet
    stacked.score(X_test, y_test)                          # float64 (L,): accuracy per hidden state
    stacked.select(3)                                      # the classifier of hidden state 3

y holds class ids (`LabelVocabulary.encode` of `token_labels`, or a `ControlTask`'s labels for the
control task), one int array per snippet with as many ids as the snippet has token vectors.

The contract is scikit-learn's (`BaseEstimator`): `__init__` stores its arguments, `fit` checks
them; `get_params`, `set_params`, `clone` work; fitted state ends in `_`: `coef_` (float32
(hidden + 1, K), W with the bias as its last row; stacked (L, hidden + 1, K)), `n_classes_`,
`n_features_in_`, `fit_result_` (`FitRecord`; stacked: `fit_results_`). The one departure: a
stacked classifier's `score` is an array, one per hidden state. Training: `training`.

Files (`save`, `load`): `classifier.safetensors` ("coef", (L, hidden + 1, K), L = 1 unstacked) and
`classifier.json` (the estimator, its hyperparameters and training records), each written
atomically with its integrity record; no pickle.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
from safetensors.numpy import load_file, save_file
from sklearn.base import BaseEstimator

from codeprobe.errors import InputError, ModelLoadError
from codeprobe.files import write_atomic, write_json
from codeprobe.probes.diagnostic.data import LabelledTokens, labelled_tokens
from codeprobe.probes.diagnostic.evaluation import AccuracyEvaluation
from codeprobe.probes.diagnostic.training import fit_classifiers, predict_log_proba
from codeprobe.probes.structural.config import StructuralTrainConfig
from codeprobe.probes.structural.data import token_vectors
from codeprobe.probes.structural.estimators import VALIDATION_SEED_SALT
from codeprobe.probes.structural.training import FitRecord

SETTINGS_FILE = "classifier.json"
WEIGHTS_FILE = "classifier.safetensors"
FILE_FORMAT = 1
CHUNK = 8192  # tokens predicted at once


class _Classifier(BaseEstimator):
    """What the two classifiers share; `_stacked` says which one a subclass is."""

    _stacked: ClassVar[bool]

    def __init__(
        self,
        n_classes: int | None = None,
        *,
        random_state: int = 0,
        config: StructuralTrainConfig = StructuralTrainConfig(),
        validation_fraction: float = 0.1,
    ) -> None:
        self.n_classes = n_classes
        self.random_state = random_state
        self.config = config
        self.validation_fraction = validation_fraction

    def fit(self, X, y, *, X_valid=None, y_valid=None):
        """Fit on snippets X with class ids y; the epoch is selected on (X_valid, y_valid), by
        default a seeded share `validation_fraction` of the snippets held out.

        Raises:
            InputError: bad hyperparameters or inputs (`data.labelled_tokens`), X_valid without
                y_valid or the other way round, fewer than 2 classes, or too few snippets to
                hold out a validation share.
        """
        self._check_params()
        train = labelled_tokens(X, y, stacked=self._stacked, n_classes=self.n_classes)
        if (X_valid is None) != (y_valid is None):
            raise InputError("give both X_valid and y_valid, or neither")
        if X_valid is None:
            train, valid = holdout(train, self.validation_fraction, self.random_state + VALIDATION_SEED_SALT)
        else:
            valid = labelled_tokens(X_valid, y_valid, stacked=self._stacked, n_classes=self.n_classes)
        n_classes = self.n_classes or int(max(train.labels.max(), valid.labels.max())) + 1
        coef, records = fit_classifiers(train, valid, n_classes, config=self.config, random_state=self.random_state)
        return self._set_fitted(coef, records)

    def predict_proba(self, X) -> list[np.ndarray]:
        """Per snippet of X, float64 (n, K) class probabilities; (L, n, K) when stacked.

        Raises:
            InputError: not fitted, or inputs as `fit` rejects them, or of another width.
        """
        out = [np.exp(predict_log_proba(self._stack(), a)) for a in self._vectors(X)]
        return out if self._stacked else [p[0] for p in out]

    def predict(self, X) -> list[np.ndarray]:
        """Per snippet of X, int64 (n,) class ids (the most probable); (L, n) when stacked."""
        return [p.argmax(-1) for p in self.predict_proba(X)]

    def _evaluations(self, X, y) -> tuple[AccuracyEvaluation, ...]:
        self._fitted()
        data = labelled_tokens(X, y, stacked=self._stacked, n_classes=self.n_classes_)
        self._check_width(data.h.shape[0], data.h.shape[2])
        predicted = np.concatenate(
            [
                predict_log_proba(self._stack(), data.h[:, a : a + CHUNK]).argmax(-1)
                for a in range(0, data.n_tokens, CHUNK)
            ],
            axis=1,
        )
        return tuple(AccuracyEvaluation.from_predictions(p, data.labels, data.offsets) for p in predicted)

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write `classifier.safetensors` and `classifier.json` to directory `path`."""
        self._fitted()
        path = Path(path)
        records = self.fit_results_ if self._stacked else (self.fit_result_,)
        settings = {
            "format": FILE_FORMAT,
            "estimator": type(self).__name__,
            "params": {**self.get_params(), "config": dataclasses.asdict(self.config)},
            "hidden": self.n_features_in_,
            "n_classes": self.n_classes_,
            "training": [r.as_dict() for r in records],
        }
        weights = {"coef": np.ascontiguousarray(self._stack())}
        write_atomic(path / WEIGHTS_FILE, lambda tmp: save_file(weights, str(tmp)), record=True)
        write_json(path / SETTINGS_FILE, settings, sort_keys=False, record=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike):
        """The fitted classifier `save` wrote to `path`.

        Raises:
            ModelLoadError: unreadable files.
            InputError: the files hold another estimator (the message names its class).
        """
        path = Path(path)
        try:
            settings = json.loads((path / SETTINGS_FILE).read_text(encoding="utf-8"))
            coef = load_file(str(path / WEIGHTS_FILE))["coef"]
        except (OSError, ValueError, KeyError) as err:
            raise ModelLoadError(f"cannot load a diagnostic classifier from {path}: {err}") from err
        if settings.get("estimator") != cls.__name__:
            raise InputError(f"{path} holds a {settings.get('estimator')}: load it with that class, not {cls.__name__}")
        params = settings["params"]
        clf = cls(**{**params, "config": StructuralTrainConfig(**params["config"])})
        return clf._set_fitted(coef, tuple(FitRecord.from_dict(r) for r in settings["training"]))

    # -- helpers ----------------------------------------------------------------------------

    def _check_params(self) -> None:
        if self.n_classes is not None and (
            isinstance(self.n_classes, bool) or not isinstance(self.n_classes, numbers.Integral) or self.n_classes < 2
        ):
            raise InputError(f"n_classes must be None (from the labels) or an integer >= 2, got {self.n_classes!r}")
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, numbers.Integral):
            raise InputError(f"random_state must be an integer, got {self.random_state!r}")
        if not isinstance(self.validation_fraction, numbers.Real) or not 0 < self.validation_fraction < 1:
            raise InputError(f"validation_fraction must lie in (0, 1), got {self.validation_fraction!r}")
        if not isinstance(self.config, StructuralTrainConfig):
            raise InputError(f"config must be a StructuralTrainConfig, got {type(self.config).__name__}")

    def _vectors(self, X) -> tuple[np.ndarray, ...]:
        """X checked against the fitted classifier: (L, n, hidden) per snippet."""
        self._fitted()
        vectors = token_vectors(X, stacked=self._stacked)
        self._check_width(vectors.n_states, vectors.hidden)
        return vectors.arrays

    def _check_width(self, n_states: int, hidden: int) -> None:
        expected = (self._stack().shape[0], self.n_features_in_)
        if (n_states, hidden) != expected:
            raise InputError(
                f"the classifier was fitted on {expected[0]} hidden state(s) of width {expected[1]}, "
                f"X has {n_states} of width {hidden}"
            )

    def _stack(self) -> np.ndarray:
        """float32 (L, hidden + 1, K) (L = 1 unstacked)."""
        return self.coef_ if self._stacked else self.coef_[None]

    def _set_fitted(self, coef: np.ndarray, records: tuple[FitRecord, ...]):
        """The one place that sets the fitted state (`fit`, `load`, `select`); coef is
        (L, hidden + 1, K)."""
        coef = np.asarray(coef, dtype=np.float32)
        self.coef_ = coef if self._stacked else coef[0]
        self.n_classes_ = int(coef.shape[2])
        self.n_features_in_ = int(coef.shape[1] - 1)
        if self._stacked:
            self.fit_results_ = records
        else:
            (self.fit_result_,) = records
        return self

    def _fitted(self) -> None:
        if getattr(self, "coef_", None) is None:
            raise InputError(f"this {type(self).__name__} is not fitted yet: call fit first")


class DiagnosticClassifier(_Classifier):
    """Softmax regression on one hidden state, fitted by cross-entropy (Hewitt & Liang, EMNLP
    2019, arXiv:1909.03368).

    Args:
        n_classes: K (None: the largest class id in the training and validation labels + 1;
            pass `len(vocabulary)` so a class the training split lacks still has a column).
        random_state: seeds the batch order and the held-out split.
        config: optimisation settings (`StructuralTrainConfig`, the structural probes' recipe;
            its `min_improvement` is here in nats per token).
        validation_fraction: share of `fit`'s snippets held out to select the epoch when no
            X_valid is given, in (0, 1).

    Attributes (after `fit` or `load`): `coef_` float32 (hidden + 1, K), `n_classes_`,
    `n_features_in_`, `fit_result_` (`FitRecord`).
    """

    _stacked = False

    def evaluate(self, X, y) -> AccuracyEvaluation:
        """The right tokens per snippet of the predictions on X against class ids y."""
        return self._evaluations(X, y)[0]

    def score(self, X, y) -> float:
        """The accuracy on (X, y), the mean over snippets."""
        return self.evaluate(X, y).accuracy


class StackedDiagnosticClassifier(_Classifier):
    """Diagnostic classifiers of every hidden state, trained together: X holds (L, n, hidden) per
    snippet, and each hidden state's classifier is what `DiagnosticClassifier` fitted on it alone
    gives (same arguments), up to float rounding.

    Attributes (after `fit` or `load`): `coef_` float32 (L, hidden + 1, K), `n_classes_`,
    `n_features_in_`, `fit_results_` (one `FitRecord` per hidden state).
    """

    _stacked = True

    def evaluate(self, X, y) -> tuple[AccuracyEvaluation, ...]:
        """One `AccuracyEvaluation` per hidden state."""
        return self._evaluations(X, y)

    def score(self, X, y) -> np.ndarray:
        """float64 (L,): each hidden state's accuracy, the mean over snippets."""
        return np.array([e.accuracy for e in self.evaluate(X, y)])

    def select(self, hidden_state: int) -> DiagnosticClassifier:
        """The fitted `DiagnosticClassifier` of one hidden state."""
        self._fitted()
        if not 0 <= hidden_state < len(self.coef_):
            raise InputError(f"hidden state {hidden_state} is not in 0..{len(self.coef_) - 1}")
        clf = DiagnosticClassifier(**self.get_params())
        return clf._set_fitted(self.coef_[[hidden_state]], (self.fit_results_[hidden_state],))


def holdout(tokens: LabelledTokens, fraction: float, seed: int) -> tuple[LabelledTokens, LabelledTokens]:
    """(kept, held out): a seeded random share `fraction` of the snippets (at least one) held
    out, both in input order.

    Raises:
        InputError: nothing would be left to train on.
    """
    m = len(tokens)
    n_valid = max(1, int(round(fraction * m)))
    if m - n_valid < 1:
        raise InputError(f"{m} snippet(s): too few to hold out a validation share, pass X_valid and y_valid")
    order = np.random.default_rng(seed).permutation(m)
    return tokens.take(np.sort(order[n_valid:])), tokens.take(np.sort(order[:n_valid]))

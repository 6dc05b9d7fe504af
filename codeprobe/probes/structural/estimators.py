"""Structural probes as scikit-learn estimators (Hewitt & Manning, NAACL 2019, N19-1419).

    probe = DistanceProbe(random_state=0).fit(X, y)       # X: (n, hidden) per snippet
    probe.predict(X_test)                                  # (n, n) squared distances each
    probe.evaluate(X_test, y_test).uuas                    # per-snippet scores (DistanceEvaluation)
    probe.save("runs/distance"); DistanceProbe.load("runs/distance")

    stacked = StackedDistanceProbe().fit(X, y)              # X: (L, n, hidden) per snippet
    stacked.evaluate(X_test, y_test)[3].dspr_by_length()   # one evaluation per hidden state
    stacked.select(3)                                      # the DistanceProbe of hidden state 3

X holds token vectors (a model's hidden states pooled onto each snippet's code tokens, see
`data`), y the gold `TokenTree`s (`SyntaxTree.token_tree()`), one per snippet, in the same
order, with as many tokens as the snippet has vectors.

- `DistanceProbe`: ||B (h_i - h_j)||^2 fitted to the gold distance, by `target`:
  "token_tree" (default: path lengths in the token tree) or "ast" (the leaf-to-leaf AST distance
  of CAT-probing's `ast` switch). UUAS is scored against the token tree's edges either way, DSpr
  against the target's distances.
- `DepthProbe`: ||B h_i||^2 fitted to the token's depth in the token tree.
- `StackedDistanceProbe`, `StackedDepthProbe`: one probe per hidden state, trained together
  (`training.fit_stacked`), each as it would be alone.

The contract is scikit-learn's (`sklearn.base.BaseEstimator`): `__init__` stores its arguments
as given and checks nothing, `fit` checks them; `get_params`, `set_params` and `clone` work; what
`fit` learns ends in `_`: `proj_` (B, float32 (hidden, rank), or (L, hidden, rank) stacked),
`rank_`, `n_features_in_`, `fit_result_` (a `FitRecord`; stacked: `fit_results_`, one per hidden
state). The one departure: a stacked probe's `score` is an array, one score per hidden state.

Defaults: the reference's training (`StructuralTrainConfig`: Adam lr 0.001, batches of 20,
ReduceLROnPlateau(0.1, patience 0), at most 40 epochs, patience 5) and its rank: `rank=None`
makes B square (rank = the vectors' width), as every configuration of the reference does
(`maximum_rank` = the model's hidden size, its rank experiment aside); a lower rank is a
setting, not a change of method.

Files (`save`, `load`): `probe.safetensors` (B as "proj", (L, hidden, rank), L = 1 unstacked)
and `probe.json` (the estimator, its hyperparameters, the head rule and the training records),
each written atomically with its integrity record; no pickle.
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
from codeprobe.probes.structural.config import StructuralTrainConfig
from codeprobe.probes.structural.data import (
    TARGETS,
    ProbeInputs,
    TokenVectors,
    check_trees,
    gold_targets,
    token_vectors,
)
from codeprobe.probes.structural.evaluation import (
    DepthEvaluation,
    DistanceEvaluation,
    depth_evaluations,
    distance_evaluations,
)
from codeprobe.probes.structural.training import FitRecord, fit_stacked, predict_snippet
from codeprobe.syntax import HEAD_RULE

SETTINGS_FILE = "probe.json"
WEIGHTS_FILE = "probe.safetensors"
FILE_FORMAT = 1
VALIDATION_SEED_SALT = 7919  # the held-out split's seed is random_state + this, as AST-Probe's


class _StructuralProbe(BaseEstimator):
    """What the four probes share; `_kind` and `_stacked` say which one a subclass is."""

    _kind: ClassVar[str]
    _stacked: ClassVar[bool]

    def __init__(
        self,
        rank: int | None = None,
        *,
        random_state: int = 0,
        config: StructuralTrainConfig = StructuralTrainConfig(),
        validation_fraction: float = 0.1,
    ) -> None:
        self.rank = rank
        self.random_state = random_state
        self.config = config
        self.validation_fraction = validation_fraction

    def fit(self, X, y, *, X_valid=None, y_valid=None):
        """Fit B on snippets X with gold trees y; the epoch is selected on (X_valid, y_valid),
        by default a seeded share `validation_fraction` of X held out.

        Raises:
            InputError: bad hyperparameters or inputs (see `data.token_vectors` and
                `data.check_trees`), X_valid without y_valid or the other way round, or too few
                snippets to hold out a validation share.
        """
        self._check_params()
        train = self._inputs(X, y)
        if (X_valid is None) != (y_valid is None):
            raise InputError("give both X_valid and y_valid, or neither")
        if X_valid is None:
            train, valid = _holdout(train, self.validation_fraction, self.random_state + VALIDATION_SEED_SALT)
        else:
            valid = self._inputs(X_valid, y_valid)
        rank = train.vectors.hidden if self.rank is None else self.rank
        proj, records = fit_stacked(train, valid, self._kind, rank, config=self.config, random_state=self.random_state)
        return self._set_fitted(proj, records)

    def predict(self, X) -> list[np.ndarray]:
        """Per snippet of X, float64: the predicted squared distances (n, n) (distance probes)
        or depths (n,) (depth probes), with a leading hidden-state axis (L, ...) when stacked.

        Raises:
            InputError: not fitted, or inputs as `fit` rejects them, or of another width.
        """
        vectors = self._vectors(X)
        out = [predict_snippet(self._kind, self._stack(), a) for a in vectors.arrays]
        return out if self._stacked else [p[0] for p in out]

    def _evaluations(self, X, y) -> tuple:
        vectors = self._vectors(X)
        trees = check_trees(y, vectors.lengths)
        predicted = (predict_snippet(self._kind, self._stack(), a) for a in vectors.arrays)
        if self._kind == "depth":
            return depth_evaluations(predicted, trees)
        return distance_evaluations(predicted, trees, self.target)

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write `probe.safetensors` and `probe.json` to directory `path` (module docstring)."""
        self._fitted()
        path = Path(path)
        records = self.fit_results_ if self._stacked else (self.fit_result_,)
        settings = {
            "format": FILE_FORMAT,
            "estimator": type(self).__name__,
            "params": {**self.get_params(), "config": dataclasses.asdict(self.config)},
            "head_rule": HEAD_RULE,
            "hidden": self.n_features_in_,
            "rank": self.rank_,
            "training": [r.as_dict() for r in records],
        }
        weights = {"proj": np.ascontiguousarray(self._stack())}
        write_atomic(path / WEIGHTS_FILE, lambda tmp: save_file(weights, str(tmp)), record=True)
        write_json(path / SETTINGS_FILE, settings, sort_keys=False, record=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike):
        """The fitted probe `save` wrote to `path`.

        Raises:
            ModelLoadError: unreadable files.
            InputError: the files hold another kind of probe (the message names its class).
        """
        path = Path(path)
        try:
            settings = json.loads((path / SETTINGS_FILE).read_text(encoding="utf-8"))
            proj = load_file(str(path / WEIGHTS_FILE))["proj"]
        except (OSError, ValueError, KeyError) as err:
            raise ModelLoadError(f"cannot load a structural probe from {path}: {err}") from err
        if settings.get("estimator") != cls.__name__:
            raise InputError(f"{path} holds a {settings.get('estimator')}: load it with that class, not {cls.__name__}")
        params = settings["params"]
        probe = cls(**{**params, "config": StructuralTrainConfig(**params["config"])})
        return probe._set_fitted(proj, tuple(FitRecord.from_dict(r) for r in settings["training"]))

    # -- helpers ----------------------------------------------------------------------------

    def _check_params(self) -> None:
        """scikit-learn checks the constructor's arguments when the estimator runs."""
        if self.rank is not None and (
            isinstance(self.rank, bool) or not isinstance(self.rank, numbers.Integral) or self.rank < 1
        ):
            raise InputError(f"rank must be None (the vectors' width) or an integer >= 1, got {self.rank!r}")
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, numbers.Integral):
            raise InputError(f"random_state must be an integer, got {self.random_state!r}")
        if not isinstance(self.validation_fraction, numbers.Real) or not 0 < self.validation_fraction < 1:
            raise InputError(f"validation_fraction must lie in (0, 1), got {self.validation_fraction!r}")
        if not isinstance(self.config, StructuralTrainConfig):
            raise InputError(f"config must be a StructuralTrainConfig, got {type(self.config).__name__}")
        if self._kind == "distance" and self.target not in TARGETS:
            raise InputError(f"target must be one of {', '.join(map(repr, TARGETS))}, got {self.target!r}")

    def _inputs(self, X, y) -> ProbeInputs:
        vectors = token_vectors(X, stacked=self._stacked)
        trees = check_trees(y, vectors.lengths)
        return ProbeInputs(vectors, gold_targets(trees, self._kind, self.target if self._kind == "distance" else None))

    def _vectors(self, X) -> TokenVectors:
        """X checked against the fitted probe."""
        self._fitted()
        vectors = token_vectors(X, stacked=self._stacked)
        expected = self._stack().shape[:2]
        if (vectors.n_states, vectors.hidden) != expected:
            raise InputError(
                f"the probe was fitted on {expected[0]} hidden state(s) of width {expected[1]}, "
                f"X has {vectors.n_states} of width {vectors.hidden}"
            )
        return vectors

    def _stack(self) -> np.ndarray:
        """float32 (L, hidden, rank): B of every probe (L = 1 unstacked)."""
        return self.proj_ if self._stacked else self.proj_[None]

    def _set_fitted(self, proj: np.ndarray, records: tuple[FitRecord, ...]):
        """The one place that sets the fitted state (`fit`, `load`, `select`); proj is
        (L, hidden, rank)."""
        proj = np.asarray(proj, dtype=np.float32)
        self.proj_ = proj if self._stacked else proj[0]
        self.rank_ = int(proj.shape[2])
        self.n_features_in_ = int(proj.shape[1])
        if self._stacked:
            self.fit_results_ = records
        else:
            (self.fit_result_,) = records
        return self

    def _fitted(self) -> None:
        if getattr(self, "proj_", None) is None:
            raise InputError(f"this {type(self).__name__} is not fitted yet: call fit first")


class _DistanceProbe(_StructuralProbe):
    _kind = "distance"

    def __init__(
        self,
        rank: int | None = None,
        *,
        target: str = "token_tree",
        random_state: int = 0,
        config: StructuralTrainConfig = StructuralTrainConfig(),
        validation_fraction: float = 0.1,
    ) -> None:
        super().__init__(rank, random_state=random_state, config=config, validation_fraction=validation_fraction)
        self.target = target


class DistanceProbe(_DistanceProbe):
    """The structural distance probe on one hidden state: d_ij = ||B (h_i - h_j)||^2 fitted to
    the gold distance of every token pair (L1 per pair, normalised by n^2 per snippet: Hewitt &
    Manning, NAACL 2019, N19-1419).

    Args:
        rank: B's columns (None: the vectors' width, the reference's square B).
        target: "token_tree" (path lengths in the token tree) or "ast" (the leaf-to-leaf AST
            distance, CAT-probing's `ast` switch).
        random_state: seeds B's initialisation, the batch order and the held-out split.
        config: optimisation settings (default: the reference's).
        validation_fraction: share of `fit`'s snippets held out to select the epoch when no
            X_valid is given, in (0, 1).

    Attributes (after `fit` or `load`): `proj_` float32 (hidden, rank), `rank_`,
    `n_features_in_`, `fit_result_` (`FitRecord`).
    """

    _stacked = False

    def evaluate(self, X, y) -> DistanceEvaluation:
        """Per-snippet UUAS counts and DSpr of the predictions on X against gold trees y."""
        return self._evaluations(X, y)[0]

    def score(self, X, y) -> float:
        """The corpus UUAS on (X, y) (recovered gold edges over gold edges)."""
        return self.evaluate(X, y).uuas


class StackedDistanceProbe(_DistanceProbe):
    """Distance probes of every hidden state, trained together: X holds (L, n, hidden) per
    snippet, and each hidden state's probe is what `DistanceProbe` fitted on it alone gives (same
    arguments), up to float rounding.

    Attributes (after `fit` or `load`): `proj_` float32 (L, hidden, rank), `rank_`,
    `n_features_in_`, `fit_results_` (one `FitRecord` per hidden state).
    """

    _stacked = True

    def evaluate(self, X, y) -> tuple[DistanceEvaluation, ...]:
        """One `DistanceEvaluation` per hidden state."""
        return self._evaluations(X, y)

    def score(self, X, y) -> np.ndarray:
        """float64 (L,): each hidden state's corpus UUAS."""
        return np.array([e.uuas for e in self.evaluate(X, y)])

    def select(self, hidden_state: int) -> DistanceProbe:
        """The fitted `DistanceProbe` of one hidden state (its B and training record)."""
        self._fitted()
        if not 0 <= hidden_state < len(self.proj_):
            raise InputError(f"hidden state {hidden_state} is not in 0..{len(self.proj_) - 1}")
        probe = DistanceProbe(**self.get_params())
        return probe._set_fitted(self.proj_[[hidden_state]], (self.fit_results_[hidden_state],))


class DepthProbe(_StructuralProbe):
    """The structural depth probe on one hidden state: ||B h_i||^2 fitted to each token's depth
    in the token tree (L1 per token, normalised by n per snippet: Hewitt & Manning, NAACL 2019,
    N19-1419).

    Args: as `DistanceProbe`'s, without `target`.

    Attributes (after `fit` or `load`): `proj_` float32 (hidden, rank), `rank_`,
    `n_features_in_`, `fit_result_` (`FitRecord`).
    """

    _kind = "depth"
    _stacked = False

    def evaluate(self, X, y) -> DepthEvaluation:
        """Per-snippet NSpr and root accuracy of the predictions on X against gold trees y."""
        return self._evaluations(X, y)[0]

    def score(self, X, y) -> float:
        """The mean over snippets of NSpr on (X, y) (`evaluate(...).nspr_by_length()` is the
        length macro average)."""
        return float(self.evaluate(X, y).nspr.mean())


class StackedDepthProbe(_StructuralProbe):
    """Depth probes of every hidden state, trained together (see `StackedDistanceProbe`)."""

    _kind = "depth"
    _stacked = True

    def evaluate(self, X, y) -> tuple[DepthEvaluation, ...]:
        """One `DepthEvaluation` per hidden state."""
        return self._evaluations(X, y)

    def score(self, X, y) -> np.ndarray:
        """float64 (L,): each hidden state's mean NSpr over snippets."""
        return np.array([e.nspr.mean() for e in self.evaluate(X, y)])

    def select(self, hidden_state: int) -> DepthProbe:
        """The fitted `DepthProbe` of one hidden state."""
        self._fitted()
        if not 0 <= hidden_state < len(self.proj_):
            raise InputError(f"hidden state {hidden_state} is not in 0..{len(self.proj_) - 1}")
        probe = DepthProbe(**self.get_params())
        return probe._set_fitted(self.proj_[[hidden_state]], (self.fit_results_[hidden_state],))


def _holdout(inputs: ProbeInputs, fraction: float, seed: int) -> tuple[ProbeInputs, ProbeInputs]:
    """(kept, held out): a seeded random share `fraction` of the snippets (at least one) held
    out, both in input order.

    Raises:
        InputError: nothing would be left to train on.
    """
    m = len(inputs)
    n_valid = max(1, int(round(fraction * m)))
    if m - n_valid < 1:
        raise InputError(f"{m} snippet(s): too few to hold out a validation share, pass X_valid and y_valid")
    order = np.random.default_rng(seed).permutation(m)
    return _take(inputs, np.sort(order[n_valid:])), _take(inputs, np.sort(order[:n_valid]))


def _take(inputs: ProbeInputs, ids: np.ndarray) -> ProbeInputs:
    v = inputs.vectors
    vectors = TokenVectors(tuple(v.arrays[i] for i in ids), v.lengths[ids], v.n_states, v.hidden)
    return ProbeInputs(vectors, tuple(inputs.gold[i] for i in ids))

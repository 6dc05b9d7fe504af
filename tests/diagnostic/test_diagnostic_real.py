"""The diagnostic classifiers on real code: 120 functions of the standard library parsed, their
tokens labelled (parent node type, depth bucket), the vocabulary and the control task chosen
on the training functions; synthetic vectors that carry each token's label are classified
well above the majority class and selectively (against the control task), vectors of noise no
better than the majority class, and the task compresses better than its control."""

from __future__ import annotations

import calendar
import difflib
import json
import shlex
import string
import textwrap
from pathlib import Path

import numpy as np
import pytest

from codeprobe.probes.diagnostic import (
    LABEL_TASKS,
    ControlTask,
    LabelVocabulary,
    StackedDiagnosticClassifier,
    online_code,
    selectivity,
    token_labels,
)
from codeprobe.probes.structural import StructuralTrainConfig
from codeprobe.syntax import parse

N_FUNCTIONS = 120
N_TRAIN, N_VALID = 80, 15
HIDDEN = 48
QUICK = StructuralTrainConfig(lr=0.01, max_epochs=12, threads=1)


@pytest.fixture(scope="module")
def trees():
    """Token trees (strings collapsed) of the first 120 functions of 2 to 120 tokens in textwrap,
    string, difflib, shlex and calendar."""
    out = []
    for module in (textwrap, string, difflib, shlex, calendar):
        tree = parse(Path(module.__file__).read_text(encoding="utf-8"), "python")
        for i in np.flatnonzero(tree.types == "function_definition").tolist():
            t = parse(textwrap.dedent(tree.node_text(i)), "python").token_tree(collapse_strings=True)
            if 2 <= len(t) <= 120:
                out.append(t)
    assert len(out) >= N_FUNCTIONS
    return out[:N_FUNCTIONS]


def _vectors(ids: list[np.ndarray], n_classes: int, seed: int) -> list[np.ndarray]:
    """(2, n, HIDDEN) per snippet: hidden state 0 noise, hidden state 1 its class's fixed random
    direction (length 6) plus the same noise."""
    directions = np.random.default_rng(99).normal(size=(n_classes, HIDDEN))
    directions *= 6 / np.linalg.norm(directions, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    out = []
    for t in ids:
        noise = rng.normal(size=(t.size, HIDDEN))
        out.append(np.stack((noise, noise + directions[t])).astype(np.float32))
    return out


@pytest.mark.parametrize("task", LABEL_TASKS)
def test_labels_of_real_code_are_learnt_selectively(trees, task):
    labels = [token_labels(t, task) for t in trees]
    vocab = LabelVocabulary.from_labels(labels[:N_TRAIN])
    ids = [vocab.encode(a) for a in labels]
    assert len(vocab) >= 8 and all(len(a) == len(t) for a, t in zip(ids, trees))
    control = ControlTask.from_labels(ids[:N_TRAIN], len(vocab), random_state=0)
    control_ids = [control.labels(t.tokens.texts) for t in trees]

    X = _vectors(ids, len(vocab), seed=1)
    train, valid, test = slice(0, N_TRAIN), slice(N_TRAIN, N_TRAIN + N_VALID), slice(N_TRAIN + N_VALID, None)

    def fit(y):
        clf = StackedDiagnosticClassifier(n_classes=len(vocab), config=QUICK)
        return clf.fit(X[train], y[train], X_valid=X[valid], y_valid=y[valid])

    on_task = fit(ids).evaluate(X[test], ids[test])
    on_control = fit(control_ids).evaluate(X[test], control_ids[test])
    majority = np.mean([np.mean(t == np.bincount(np.concatenate(ids[train])).argmax()) for t in ids[test]])
    noise, signal = on_task
    assert signal.accuracy > 0.9
    assert noise.accuracy < majority + 0.05
    s = selectivity(signal, on_control[1])
    assert s.mean > 0.4 and s.excludes_zero


def test_real_labels_compress_better_than_their_control(trees):
    labels = [token_labels(t, "parent_type") for t in trees]
    vocab = LabelVocabulary.from_labels(labels[:N_TRAIN])
    ids = [vocab.encode(a) for a in labels]
    control = ControlTask.from_labels(ids[:N_TRAIN], len(vocab), random_state=0)
    control_ids = [control.labels(t.tokens.texts) for t in trees]
    X = _vectors(ids, len(vocab), seed=2)
    k = len(vocab)
    tr, va = slice(0, N_TRAIN), slice(N_TRAIN, N_TRAIN + N_VALID)
    task = online_code(X[tr], ids[tr], X_valid=X[va], y_valid=ids[va], n_classes=k, config=QUICK)
    ctl = online_code(X[tr], control_ids[tr], X_valid=X[va], y_valid=control_ids[va], n_classes=k, config=QUICK)
    assert task.compression[1] > 1.5 * ctl.compression[1]
    assert task.compression[1] > 1.5 * task.compression[0]
    assert json.dumps(task.as_dict())

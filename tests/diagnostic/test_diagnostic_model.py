"""The diagnostic classifiers on real hidden states: the packaged model (all-MiniLM-L6-v2) read
standard-library functions, its hidden states pooled onto each function's token-tree tokens
(strings collapsed, as the structural probes read them); every hidden state's classifier labels
the tokens' parent node types and depth buckets well above the majority class, and the control
task's accuracies and selectivity come out as finite paired figures."""

from __future__ import annotations

import difflib
import string
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from codeprobe.model import Extractor, ModelInput, load_model
from codeprobe.probes.diagnostic import (
    LABEL_TASKS,
    ControlTask,
    LabelVocabulary,
    StackedDiagnosticClassifier,
    selectivity,
    token_labels,
)
from codeprobe.probes.structural import StructuralTrainConfig
from codeprobe.syntax import parse

N_FUNCTIONS = 60
TRAIN, VALID, TEST = slice(0, 40), slice(40, 48), slice(48, None)
QUICK = StructuralTrainConfig(lr=0.01, max_epochs=10, threads=1)


@pytest.fixture(scope="module")
def hidden_states():
    """(per-function hidden states (7, n, 384), token trees) of stdlib functions of <= 120 tokens."""
    codes = []
    for module in (textwrap, string, difflib):
        tree = parse(Path(module.__file__).read_text(encoding="utf-8"), "python")
        for i in np.flatnonzero(tree.types == "function_definition").tolist():
            code = textwrap.dedent(tree.node_text(i))
            if 2 <= len(parse(code, "python").tokens(collapse_strings=True)) <= 120:
                codes.append(code)
    trees = [parse(code, "python").token_tree(collapse_strings=True) for code in codes[:N_FUNCTIONS]]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        extractor = Extractor(load_model(device="cpu"), attention=False, hidden_states=True, length_policy="skip")
        inputs = [ModelInput.from_tokens(k, c, t.tokens) for k, (c, t) in enumerate(zip(codes, trees))]
        results = list(extractor.extract(inputs))
    finally:
        torch.set_num_threads(before)
    kept = [(r.hidden_states, t) for r, t in zip(results, trees) if r.status == "ok"]
    assert len(kept) >= N_FUNCTIONS - 5 and all(h.shape[1] == len(t) for h, t in kept)
    return [h for h, _ in kept], [t for _, t in kept]


@pytest.mark.parametrize("task", LABEL_TASKS)
def test_every_hidden_state_beats_the_majority_class(hidden_states, task):
    X, trees = hidden_states
    labels = [token_labels(t, task) for t in trees]
    vocab = LabelVocabulary.from_labels(labels[TRAIN])
    y = [vocab.encode(a) for a in labels]
    control = ControlTask.from_labels(y[TRAIN], len(vocab), random_state=0)
    c = [control.labels(t.tokens.texts) for t in trees]

    def evaluate(labels):
        clf = StackedDiagnosticClassifier(n_classes=len(vocab), config=QUICK)
        clf.fit(X[TRAIN], labels[TRAIN], X_valid=X[VALID], y_valid=labels[VALID])
        return clf.evaluate(X[TEST], labels[TEST])

    on_task, on_control = evaluate(y), evaluate(c)
    majority = np.mean([np.mean(t == 0) for t in y[TEST]])  # id 0: the training majority class
    assert len(on_task) == 7
    for task_scores, control_scores in zip(on_task, on_control):
        assert task_scores.accuracy > majority + 0.15
        assert 0.0 <= control_scores.accuracy <= 1.0
        s = selectivity(task_scores, control_scores)
        assert np.isfinite([s.mean, s.low, s.high]).all() and s.low <= s.mean <= s.high

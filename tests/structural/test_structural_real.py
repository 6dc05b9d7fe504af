"""The structural probes on real hidden states: the packaged model (all-MiniLM-L6-v2) read 20
short standard-library functions, its hidden states pooled onto each function's token-tree
tokens (strings collapsed, as AST-Probe's cache holds them); the stacked probes fit every hidden
state and score finite metrics, beside the linear baseline."""

from __future__ import annotations

import string
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from codeprobe.model import Extractor, ModelInput, load_model
from codeprobe.probes.structural import (
    DepthEvaluation,
    DistanceEvaluation,
    StackedDepthProbe,
    StackedDistanceProbe,
    StructuralTrainConfig,
)
from codeprobe.syntax import parse

N_FUNCTIONS = 20
QUICK = StructuralTrainConfig(max_epochs=4, threads=1)


@pytest.fixture(scope="module")
def hidden_states():
    """(per-function hidden states (7, n, 384), token trees) of short stdlib functions."""
    codes = []
    for module in (textwrap, string):
        tree = parse(Path(module.__file__).read_text(encoding="utf-8"), "python")
        for i in np.flatnonzero(tree.types == "function_definition").tolist():
            code = textwrap.dedent(tree.node_text(i))
            if len(parse(code, "python").tokens(collapse_strings=True)) <= 80:
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
    assert all(r.status == "ok" and r.hidden_states.shape[1] == len(t) for r, t in zip(results, trees))
    return [r.hidden_states for r in results], trees


def test_stacked_probes_fit_the_packaged_model(hidden_states):
    X, trees = hidden_states
    assert len(X) == N_FUNCTIONS and X[0].shape[0] == 7 and X[0].shape[2] == 384
    train, test = slice(0, 15), slice(15, None)
    distance = StackedDistanceProbe(rank=32, config=QUICK).fit(X[train], trees[train])
    depth = StackedDepthProbe(rank=32, config=QUICK).fit(X[train], trees[train])
    linear = DistanceEvaluation.linear(trees[test])
    for scores in distance.evaluate(X[test], trees[test]):
        assert 0.0 <= scores.uuas <= 1.0 and np.isfinite(scores.dspr).all()
        assert np.isfinite(scores.difference(linear, "dspr").mean)
    for scores in depth.evaluate(X[test], trees[test]):
        assert np.isfinite(scores.nspr).all() and 0.0 <= scores.root_accuracy <= 1.0
        assert np.isfinite(scores.difference(DepthEvaluation.linear(trees[test])).mean)
    for record in distance.fit_results_ + depth.fit_results_:
        assert np.isfinite(record.best_valid_loss) and record.best_valid_loss <= record.initial_valid_loss

"""The structural probes on synthetic problems whose gold is exactly realisable by a low-rank B
(tests/structural/synthetic_trees.py): they recover the trees (UUAS and DSpr near 1, NSpr and
root accuracy near 1), random vectors stay near the linear baseline or below, the AST target
is learnt as such, and the scores carry bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic_trees import MAX_TOKENS, ast_path_vectors, embedded, expression_trees, path_vectors

from codeprobe.probes.structural import (
    DepthEvaluation,
    DepthProbe,
    DistanceEvaluation,
    DistanceProbe,
    StructuralTrainConfig,
)
from codeprobe.probes.structural.data import gold_targets
from codeprobe.syntax import ast_distance

HIDDEN = 32
WIDTH = MAX_TOKENS - 1
FAST = StructuralTrainConfig(lr=1e-2, max_epochs=40, threads=1)


@pytest.fixture(scope="module")
def problem():
    """300 training and 100 test trees, their exactly embedded vectors (little noise in the
    directions B* ignores) and random vectors."""
    trees = expression_trees(400, seed=0)
    rng = np.random.default_rng(2)
    exact = [embedded(path_vectors(t.heads, WIDTH), HIDDEN, 0.1, rng) for t in trees]
    random = [rng.normal(size=(len(t), HIDDEN)).astype(np.float32) for t in trees]
    return trees[:300], trees[300:], exact[:300], exact[300:], random[:300], random[300:]


def test_the_synthetic_gold_is_realisable():
    trees = expression_trees(20, seed=5)
    for t in trees:
        x = path_vectors(t.heads, WIDTH)
        np.testing.assert_allclose(((x[:, None] - x[None]) ** 2).sum(-1), t.distance)
        np.testing.assert_allclose((x**2).sum(-1), t.depth)
        width = t.tokens.tree.n_nodes
        a = ast_path_vectors(t, width)
        np.testing.assert_allclose(((a[:, None] - a[None]) ** 2).sum(-1), ast_distance(t.tokens))


def test_distance_probe_recovers_a_realisable_tree(problem):
    train_t, test_t, train_x, test_x, _, _ = problem
    probe = DistanceProbe(config=FAST).fit(train_x, train_t)
    scores = probe.evaluate(test_x, test_t)
    linear = DistanceEvaluation.linear(test_t)
    assert probe.rank_ == HIDDEN and probe.proj_.shape == (HIDDEN, HIDDEN)  # rank None: square B
    assert scores.uuas >= 0.95 and probe.score(test_x, test_t) == scores.uuas
    # Gold distances tie a lot; a continuous prediction orders each tie at random, so DSpr's
    # ceiling on these small trees is a little below 1.
    assert np.nanmean(scores.dspr) >= 0.9
    assert linear.uuas < 0.5 and np.nanmean(linear.dspr) < 0.3
    gain = scores.difference(linear, "uuas")
    assert gain.excludes_zero and gain.mean > 0.4
    interval = scores.interval("dspr")
    assert interval.low <= interval.mean <= interval.high and interval.n == int(np.isfinite(scores.dspr).sum())
    result = probe.fit_result_
    assert 0 < result.best_epoch <= result.epochs and result.best_valid_loss < result.initial_valid_loss / 10


def test_depth_probe_recovers_depths(problem):
    train_t, test_t, train_x, test_x, _, _ = problem
    probe = DepthProbe(config=FAST).fit(train_x, train_t)
    scores = probe.evaluate(test_x, test_t)
    assert scores.nspr.mean() >= 0.9 and scores.root_accuracy >= 0.95
    assert probe.score(test_x, test_t) == pytest.approx(scores.nspr.mean())
    depth = probe.predict(test_x[:3])
    assert [d.shape for d in depth] == [(len(t),) for t in test_t[:3]]
    np.testing.assert_allclose(depth[0], test_t[0].depth, atol=0.5)
    # Under the first-token rule the linear baseline's root is always right (docs/token-tree.md).
    assert DepthEvaluation.linear(test_t).root_accuracy == 1.0


def test_random_vectors_stay_near_the_linear_baseline_or_below(problem):
    train_t, test_t, _, _, train_r, test_r = problem
    linear = DistanceEvaluation.linear(test_t)
    scores = DistanceProbe(config=FAST).fit(train_r, train_t).evaluate(test_r, test_t)
    assert scores.uuas <= linear.uuas + 0.05
    assert np.nanmean(scores.dspr) <= np.nanmean(linear.dspr) + 0.1
    depth = DepthProbe(config=FAST).fit(train_r, train_t).evaluate(test_r, test_t)
    assert depth.nspr.mean() <= DepthEvaluation.linear(test_t).nspr.mean()


def test_the_ast_target_fits_ast_distances(problem):
    train_t, test_t = problem[0][:150], problem[1][:50]
    width = max(t.tokens.tree.n_nodes for t in train_t + test_t)
    rng = np.random.default_rng(3)
    vectors = [embedded(ast_path_vectors(t, width), width + 8, 0.1, rng) for t in train_t + test_t]
    assert all(
        np.array_equal(g, ast_distance(t.tokens)) for g, t in zip(gold_targets(test_t, "distance", "ast"), test_t)
    )
    config = StructuralTrainConfig(lr=1e-2, max_epochs=60, batch_size=10, threads=1)
    ast = DistanceProbe(target="ast", config=config).fit(vectors[:150], train_t)
    scores = ast.evaluate(vectors[150:], test_t)
    assert scores.target == "ast" and np.nanmean(scores.dspr) >= 0.9
    # The same vectors fitted to token-tree distances fit them worse: the switch changes the gold.
    tree = DistanceProbe(config=config).fit(vectors[:150], train_t)
    assert tree.fit_result_.best_valid_loss > 2 * ast.fit_result_.best_valid_loss


def test_predicted_distances_are_the_projected_squared_distances(problem):
    _, test_t, _, test_x, _, _ = problem
    probe = DistanceProbe(rank=8, config=StructuralTrainConfig(max_epochs=1, threads=1)).fit(test_x, test_t)
    for x, d in zip(test_x[:5], probe.predict(test_x[:5])):
        t = x.astype(np.float64) @ probe.proj_.astype(np.float64)
        np.testing.assert_allclose(d, ((t[:, None] - t[None]) ** 2).sum(-1), atol=1e-9)
        assert d.dtype == np.float64 and np.array_equal(d, d.T)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

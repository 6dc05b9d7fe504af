"""Stacked training against training each hidden state alone, the losses against the
reference's formulas (tests/oracles/structural_probe.py), `StackedAdam` against torch's Adam,
`PlateauSchedule` against torch's ReduceLROnPlateau, and seeds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from oracles.structural_probe import reference_depth_loss, reference_distance_loss
from synthetic_trees import MAX_TOKENS, embedded, expression_trees, path_vectors

from codeprobe.probes.structural import (
    DepthProbe,
    DistanceProbe,
    StackedDepthProbe,
    StackedDistanceProbe,
    StructuralTrainConfig,
)
from codeprobe.probes.structural.data import ProbeInputs, gold_targets, token_vectors
from codeprobe.probes.structural.training import PlateauSchedule, StackedAdam, batch_losses

HIDDEN = 24
# Patience 2 and a short budget: the hidden states stop at different epochs.
SHORT = StructuralTrainConfig(lr=1e-2, max_epochs=12, patience=2, threads=1)


@pytest.fixture(scope="module")
def stacked_problem():
    """120 trees, 3 hidden states each: exact (little noise), random, exact under more noise."""
    trees = expression_trees(120, seed=7)
    rng = np.random.default_rng(8)
    X = []
    for t in trees:
        x = path_vectors(t.heads, MAX_TOKENS - 1)
        states = [embedded(x, HIDDEN, 0.1, rng), rng.normal(size=(len(t), HIDDEN)), embedded(x, HIDDEN, 0.7, rng)]
        X.append(np.stack(states).astype(np.float32))
    return X, trees


@pytest.mark.parametrize(
    ("stacked_cls", "single_cls"), [(StackedDistanceProbe, DistanceProbe), (StackedDepthProbe, DepthProbe)]
)
def test_stacked_training_equals_training_each_hidden_state_alone(stacked_problem, stacked_cls, single_cls):
    X, trees = stacked_problem
    stacked = stacked_cls(rank=16, random_state=4, config=SHORT).fit(X, trees)
    assert stacked.proj_.shape == (3, HIDDEN, 16) and len(stacked.fit_results_) == 3
    assert len({r.epochs for r in stacked.fit_results_}) > 1  # members left the stack at different epochs
    predictions = stacked.predict(X[:4])
    for h in range(3):
        alone = single_cls(rank=16, random_state=4, config=SHORT).fit([x[h] for x in X], trees)
        np.testing.assert_allclose(stacked.proj_[h], alone.proj_, rtol=1e-4, atol=1e-6)
        a, b = stacked.fit_results_[h], alone.fit_result_
        assert (a.best_epoch, a.epochs, a.hit_max_epochs) == (b.best_epoch, b.epochs, b.hit_max_epochs)
        for ra, rb in zip(a.history, b.history):
            assert ra.lr == rb.lr
            np.testing.assert_allclose([ra.train_loss, ra.valid_loss], [rb.train_loss, rb.valid_loss], rtol=1e-5)
        for p, q in zip(predictions, alone.predict([x[h] for x in X[:4]])):
            np.testing.assert_allclose(p[h], q, rtol=1e-4, atol=1e-5)
        selected = stacked.select(h)
        assert isinstance(selected, single_cls) and np.array_equal(selected.proj_, stacked.proj_[h])
        assert selected.fit_result_ == stacked.fit_results_[h]


def test_seeds_reproduce_and_differ(stacked_problem):
    X, trees = stacked_problem
    X = [x[0] for x in X]
    first = DistanceProbe(rank=8, random_state=3, config=SHORT).fit(X, trees)
    again = DistanceProbe(rank=8, random_state=3, config=SHORT).fit(X, trees)
    other = DistanceProbe(rank=8, random_state=5, config=SHORT).fit(X, trees)
    assert np.array_equal(first.proj_, again.proj_) and first.fit_result_ == again.fit_result_
    assert not np.allclose(first.proj_, other.proj_)


def test_losses_are_the_references(stacked_problem):
    X, trees = stacked_problem
    ids = np.array([5, 0, 17, 3])
    rng = np.random.default_rng(0)
    # Far from the origin: the distance loss's centring must not change it.
    vectors = token_vectors([x[:2] + 5.0 for x in X], stacked=True)
    proj = torch.from_numpy(rng.uniform(-0.3, 0.3, (2, HIDDEN, 6)).astype(np.float32))
    for kind, reference in (("distance", reference_distance_loss), ("depth", reference_depth_loss)):
        gold = gold_targets(trees, kind, "token_tree" if kind == "distance" else None)
        batch = ProbeInputs(vectors, gold).batch(ids, np.arange(2), "cpu")
        losses = batch_losses(kind, proj, batch)
        for s in range(2):
            expected = reference([vectors.arrays[i][s] for i in ids], [gold[i] for i in ids], proj[s].double().numpy())
            assert losses[s].item() == pytest.approx(expected, rel=1e-5)


def test_stacked_adam_is_torchs_adam_for_each_member():
    g = torch.Generator().manual_seed(0)
    init = torch.randn(3, 4, 5, generator=g)
    lrs = np.array([1e-3, 1e-2, 1e-1])
    stacked = init.clone()
    adam = StackedAdam(stacked, lrs)
    params = [torch.nn.Parameter(init[s].clone()) for s in range(3)]
    optimizers = [torch.optim.Adam([p], lr=lr) for p, lr in zip(params, lrs)]
    for step in range(8):
        grad = torch.randn(stacked.shape, generator=g)
        adam.step(stacked, grad)
        for p, o, gp in zip(params, optimizers, grad):
            p.grad = gp.clone()
            o.step()
        if step == 2:  # a schedule cuts member 1's rate
            adam.set_lr(lrs * [1.0, 0.1, 1.0][: len(params)])
            optimizers[1].param_groups[0]["lr"] = lrs[1] * 0.1
        if step == 4:  # member 1 stops
            adam.keep(np.array([True, False, True]))
            stacked = stacked[[0, 2]].clone()
            params, optimizers, lrs = [params[0], params[2]], [optimizers[0], optimizers[2]], lrs[[0, 2]]
        for s, p in enumerate(params):
            torch.testing.assert_close(stacked[s], p.detach(), rtol=1e-5, atol=1e-7)


def test_plateau_schedule_is_torchs_reduce_lr_on_plateau():
    rng = np.random.default_rng(1)
    losses = np.cumsum(rng.normal(-0.05, 0.1, (25, 3)), axis=0) + 3.0
    losses[6, 1] = np.nan
    losses[10:14, 2] = losses[9, 2] * (1 - 5e-5)  # below the best, but not by the relative threshold
    schedule = PlateauSchedule(3, 1e-3, 0.1)
    optimizers = [torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3) for _ in range(3)]
    torch_schedules = [
        torch.optim.lr_scheduler.ReduceLROnPlateau(o, mode="min", factor=0.1, patience=0) for o in optimizers
    ]
    distinct = set()
    for epoch_losses in losses:
        schedule.step(np.arange(3), epoch_losses)
        for s, t in zip(torch_schedules, epoch_losses):
            s.step(float(t))
        assert schedule.lr.tolist() == [o.param_groups[0]["lr"] for o in optimizers]
        distinct.add(len(set(schedule.lr.tolist())))
    assert max(distinct) > 1 and schedule.lr.min() < 1e-7  # members apart, and down to torch's floor


def test_a_zero_learning_rate_keeps_the_initialisation(stacked_problem):
    X, trees = stacked_problem
    X = [x[0] for x in X]
    frozen = dataclasses.replace(SHORT, lr=0.0)
    probe = DistanceProbe(rank=8, config=frozen).fit(X, trees)
    assert probe.fit_result_.best_epoch == 0 and probe.fit_result_.epochs == frozen.patience
    generator = torch.Generator().manual_seed(0)
    expected = torch.empty((HIDDEN, 8)).uniform_(-0.05, 0.05, generator=generator).numpy()
    np.testing.assert_array_equal(probe.proj_, expected)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

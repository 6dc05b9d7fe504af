"""Probes trained together (`fit_many`) against each trained alone (`fit`), the stacked loss
against the single-probe loss, the epoch budget flag, and sweeps built on them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from shared_data import cosqa_functions
from tiny_model import one_thread, tiny_model, tiny_model_dir  # noqa: F401  (fixtures)

from codeprobe.errors import InputError
from codeprobe.model import Extractor
from codeprobe.probes.astprobe import (
    ASTProbe,
    LabelVocab,
    ProbeData,
    ProbeDivergedError,
    TrainConfig,
    TupleBatch,
    code_tuple,
    fit,
    fit_many,
    prepare_split,
    sweep,
)
from codeprobe.probes.astprobe.probe import ProbeModule, loss_parts, orthogonality, stacked_loss
from codeprobe.probes.astprobe.targets import Targets
from codeprobe.probes.astprobe.train_config import DEFAULT_MAX_EPOCHS, PAPER_TRAINING

pytestmark = pytest.mark.usefixtures("one_thread")

HIDDEN = 16


def _hidden_states(tuples, seed, noise=0.0, scale=1.0, hidden=HIDDEN):
    """Token hidden states whose consecutive differences have squared norm d_i (a random direction
    scaled by sqrt(d_i)), plus Gaussian noise, times `scale`: learnable to a degree set by
    `noise`."""
    rng = np.random.default_rng(seed)
    out = []
    for t in tuples:
        steps = rng.normal(size=(t.n_tokens - 1, hidden))
        steps *= (np.sqrt(t.d) / np.linalg.norm(steps, axis=1))[:, None]
        x = np.vstack([np.zeros((1, hidden)), np.cumsum(steps, axis=0)])
        out.append(x + noise * rng.normal(size=x.shape))
    return (scale * np.concatenate(out)).astype(np.float32)


@pytest.fixture(scope="module")
def snippets():
    tuples = [code_tuple(code, "python") for _, code in cosqa_functions()[:100]]
    train, valid = tuples[:70], tuples[70:]
    # Vocabularies from part of the training split only, so that some gold labels are <unk>.
    vocabs = {"python": (LabelVocab.build(t.c for t in train[:40]), LabelVocab.build(t.u for t in train[:40]))}
    return train, valid, TupleBatch.from_tuples(train), TupleBatch.from_tuples(valid), vocabs


def _members(snippets, specs, hidden=HIDDEN):
    """One (train, valid) pair of ProbeData per (noise, scale) spec: same snippets, own hidden states."""
    train, valid, gold_train, gold_valid, _ = snippets
    return [
        (
            ProbeData(_hidden_states(train, 2 * k, noise, scale, hidden), gold_train, "python"),
            ProbeData(_hidden_states(valid, 2 * k + 1, noise, scale, hidden), gold_valid, "python"),
        )
        for k, (noise, scale) in enumerate(specs)
    ]


def _assert_same_fit(together, alone, atol_of_scale=0.0):
    """Same epochs, rollbacks and losses; parameters equal to float tolerance, plus
    `atol_of_scale` times each tensor's largest entry where training amplifies rounding."""
    assert together.epochs == alone.epochs and together.best_epoch == alone.best_epoch
    assert together.rollbacks == alone.rollbacks and together.hit_max_epochs == alone.hit_max_epochs
    assert together.best_valid_loss == pytest.approx(alone.best_valid_loss, rel=1e-5)
    for a, b in zip(together.history, alone.history):
        assert (a.epoch, a.lr) == (b.epoch, b.lr)
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-5)
        assert a.valid_loss == pytest.approx(b.valid_loss, rel=1e-5)
    want = alone.module.state_dict()
    for key, value in together.module.state_dict().items():
        atol = max(1e-6, atol_of_scale * float(want[key].abs().max()))
        torch.testing.assert_close(value, want[key], rtol=1e-4, atol=atol)


def test_stacked_loss_matches_each_probe_alone(snippets):
    train, _, gold, _, vocabs = snippets
    # u labels from a few snippets only, so that some gold u are <unk> too.
    vocabs = {"python": (vocabs["python"][0], LabelVocab.build(t.u for t in train[:3]))}
    data = [ProbeData(_hidden_states(train, k, noise=0.5), gold, "python") for k in range(3)]
    sizes = {"python": tuple(len(v) for v in vocabs["python"])}
    modules = [ProbeModule(HIDDEN, 5, sizes, torch.Generator().manual_seed(k)) for k in range(3)]
    targets = Targets.of(data[0], *vocabs["python"])
    ids = np.array([3, 17, 45, 60, 52, 69, 8])
    batch = targets.batch(ids, "cpu")
    tok, lay, d, c, u = targets.reference_batch(ids, "cpu")
    assert np.array_equal(tok, batch.tok) and (c == 0).any() and (u == 0).any()  # <unk> targets

    h = torch.stack([torch.from_numpy(x.hidden_states[tok]) for x in data])
    proj = torch.stack([m.proj for m in modules])
    stacked = stacked_loss(
        h,
        proj,
        torch.stack([m.vectors_c["python"] for m in modules]),
        torch.stack([m.vectors_u["python"] for m in modules]),
        batch.targets,
    )
    (stacked.total() + 5 * orthogonality(proj)).sum().backward()
    for k, module in enumerate(modules):
        grads = {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}
        module.zero_grad()
        alone = loss_parts(*module(h[k], lay.split_index, "python"), d, c, u, lay)
        (alone.total() + 5 * module.orthogonality()).backward()
        for field in ("d_sum", "c_sum", "u_sum"):
            want = float(getattr(alone, field).detach())
            assert float(getattr(stacked, field)[k].detach()) == pytest.approx(want, rel=1e-5)
        for field in ("d_count", "c_count", "u_count"):
            assert int(getattr(stacked, field)) == int(getattr(alone, field))
        for name, p in module.named_parameters():
            if p.grad is not None:
                torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("config", "specs"),
    [
        # Members that learn to different degrees stop at different epochs.
        (TrainConfig(lr=1e-2, max_epochs=15), [(0, 1), (3, 1), (50, 1), (0, 30), (0, 0.05)]),
        # A large step without the penalty: the guard rolls back some members, not others.
        (
            TrainConfig(lr=1.0, max_epochs=6, patience=6, orthogonality=0.0),
            [(0, 1), (3, 1), (50, 1), (0, 30), (0, 0.05)],
        ),
    ],
    ids=["early-stops", "rollbacks"],
)
def test_training_together_equals_training_alone(snippets, config, specs):
    vocabs = snippets[4]
    members = _members(snippets, specs)
    together = fit_many([t for t, _ in members], [v for _, v in members], vocabs, 8, config=config, random_state=1)
    alone = [fit(t, v, vocabs, 8, config=config, random_state=1) for t, v in members]
    # At lr 1.0 Adam's normalised steps amplify the last-bit differences between batched and
    # single matrix products (they differ by CPU instruction set) to ~1e-4 of a tensor's scale.
    atol_of_scale = 1e-3 if config.lr >= 1.0 else 0.0
    for a, b in zip(together, alone):
        _assert_same_fit(a, b, atol_of_scale)
    if config.orthogonality:
        assert len({r.epochs for r in together}) > 1
    else:
        assert any(r.rollbacks for r in together) and not all(r.rollbacks for r in together)


def test_ranks_and_widths_train_in_groups(snippets):
    vocabs = snippets[4]
    narrow = _members(snippets, [(1, 1), (2, 1)])
    wide = _members(snippets, [(1, 1)], hidden=12)
    # The first member twice (one hidden-states object: gathered once per batch) at two ranks.
    train = [narrow[0][0], narrow[1][0], narrow[0][0], wide[0][0]]
    valid = [narrow[0][1], narrow[1][1], narrow[0][1], wide[0][1]]
    ranks = [4, 4, 8, 4]
    config = TrainConfig(lr=1e-2, max_epochs=4)
    together = fit_many(train, valid, vocabs, ranks, config=config, random_state=2)
    for t, v, r, result in zip(train, valid, ranks, together):
        assert result.module.rank == r
        _assert_same_fit(result, fit(t, v, vocabs, r, config=config, random_state=2))


def test_members_must_match(snippets):
    train, valid, gold_train, gold_valid, vocabs = snippets
    ((t, v),) = _members(snippets, [(1, 1)])
    other = ProbeData(_hidden_states(train[1:], 0), TupleBatch.from_tuples(train[1:]), "python")
    with pytest.raises(InputError):
        fit_many([t, other], [v, v], vocabs, 4)
    with pytest.raises(InputError):
        fit_many([t, t], [v, v], vocabs, [4, 4, 4])
    with pytest.raises(InputError):
        fit_many([t], [v, v], vocabs, 4)
    with pytest.raises(InputError):
        fit_many([t], [v], vocabs, 0)


def test_a_diverged_member_leaves_the_others_alone(snippets):
    vocabs = snippets[4]
    ((t, v),) = _members(snippets, [(1, 1)])
    broken = ProbeData(np.full(t.hidden_states.shape, np.nan, np.float32), t.gold, "python")
    config = TrainConfig(lr=1e-2, max_epochs=3, patience=2)
    results = fit_many([broken, t], [v, v], vocabs, 4, config=config, return_errors=True)
    assert isinstance(results[0], ProbeDivergedError)
    _assert_same_fit(results[1], fit(t, v, vocabs, 4, config=config))
    with pytest.raises(ProbeDivergedError):
        fit_many([broken, t], [v, v], vocabs, 4, config=config)


def test_the_epoch_budget_flag(snippets):
    vocabs = snippets[4]
    ((t, v),) = _members(snippets, [(0, 1)])
    improving = fit(t, v, vocabs, 8, config=TrainConfig(lr=1e-2, max_epochs=3))
    assert improving.epochs == 3 and improving.best_epoch == 3 and improving.hit_max_epochs
    # lr 0: nothing improves after epoch 1; patience 3 ends it at epoch 4 ...
    stuck = fit(t, v, vocabs, 8, config=TrainConfig(lr=0.0, patience=3))
    assert stuck.epochs == 4 and not stuck.hit_max_epochs
    # ... also when epoch 4 is the last allowed one: early stopping ended it.
    last = fit(t, v, vocabs, 8, config=TrainConfig(lr=0.0, patience=3, max_epochs=4))
    assert last.epochs == 4 and not last.hit_max_epochs
    cut = fit(t, v, vocabs, 8, config=TrainConfig(lr=0.0, patience=3, max_epochs=3))
    assert cut.epochs == 3 and cut.hit_max_epochs


def test_improvements_smaller_than_the_threshold_do_not_reset_patience(snippets):
    vocabs = snippets[4]
    ((t, v),) = _members(snippets, [(0, 1)])
    config = TrainConfig(lr=1e-2, max_epochs=6, patience=2, min_improvement=0.0)
    strict = fit(t, v, vocabs, 8, config=config, random_state=1)
    losses = [r.valid_loss for r in strict.history]
    assert strict.epochs > 3 and losses[1] < losses[0]
    # Only a fall of more than half counts: epoch 1 (from infinity) improves, 2 and 3 do not.
    coarse = fit(t, v, vocabs, 8, config=dataclasses.replace(config, min_improvement=0.5), random_state=1)
    assert coarse.epochs == 3 and coarse.history == strict.history[:3] and not coarse.hit_max_epochs
    assert coarse.best_epoch == 1 + int(np.argmin(losses[:3])) > 1  # still the lowest loss


def test_train_config_presets():
    default, paper = TrainConfig(), TrainConfig.paper()
    assert paper == PAPER_TRAINING and default.max_epochs == DEFAULT_MAX_EPOCHS > 20
    # The paper's budget, arXiv 2206.11719, spelled out once (train_config.PAPER_TRAINING).
    assert paper.settings() == {
        "max_epochs": 20,
        "patience": 5,
        "min_improvement": 0.0,
        "lr": 1e-3,
        "batch_size": 32,
        "orthogonality": 5.0,
        "lr_factor": 0.1,
        "init": "uniform",
    }
    assert paper.settings() == {**default.settings(), "max_epochs": 20, "min_improvement": 0.0}
    assert set(default.settings()) == {
        "lr",
        "batch_size",
        "orthogonality",
        "max_epochs",
        "patience",
        "min_improvement",
        "lr_factor",
        "init",
    }
    assert TrainConfig.paper(lr=0.5).lr == 0.5 and PAPER_TRAINING.lr == 1e-3
    with pytest.raises(dataclasses.FrozenInstanceError):
        PAPER_TRAINING.lr = 0.5


@pytest.mark.parametrize(
    "field, value",
    [
        ("max_epochs", 0),
        ("max_epochs", 2.5),
        ("batch_size", 0),
        ("batch_size", True),
        ("patience", 0),
        ("patience", -1),
        ("lr", -1e-3),
        ("lr", float("nan")),
        ("lr", "0.001"),
        ("min_improvement", 1.0),
        ("min_improvement", -0.1),
        ("orthogonality", -1.0),
        ("orthogonality", float("inf")),
        ("lr_factor", 0.0),
        ("lr_factor", 1.0),
        ("threads", 0),
        ("device", ""),
        ("init", "zeros"),
    ],
)
def test_train_config_rejects_a_bad_field_by_name(field, value):
    with pytest.raises(InputError, match=rf"TrainConfig\.{field} must be"):
        TrainConfig(**{field: value})
    with pytest.raises(InputError, match=rf"TrainConfig\.{field} must be"):
        TrainConfig.paper(**{field: value})


def test_train_config_accepts_the_edges():
    edge = TrainConfig(
        lr=0,
        max_epochs=1,
        patience=1,
        batch_size=np.int64(1),
        min_improvement=0,
        orthogonality=0,
        lr_factor=0.5,
        threads=1,
        init="orthogonal",
    )
    assert edge.lr == 0 and edge.batch_size == 1


@pytest.fixture(scope="module")
def tiny_splits(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("hidden_states")
    items = cosqa_functions()[:90]
    ex = Extractor(tiny_model, attention=False, hidden_states=True, length_policy="skip")
    return [prepare_split(items[a:b], "python", ex, root) for a, b in ((0, 60), (60, 75), (75, 90))], root


def test_sweeps_equal_probes_fitted_one_by_one(tiny_model, tiny_splits, tmp_path):
    (train, valid, test), root = tiny_splits
    config = TrainConfig(lr=1e-2, max_epochs=3)
    states = sweep(train, valid, test, [(0, 8), (1, 8), (2, 8)], config=config, save_dir=tmp_path)
    ranks = sweep(train, valid, test, [(1, 4), (1, 8)], config=config)
    for point in states + ranks:
        probe = ASTProbe(rank=point.rank, hidden_state=point.hidden_state, cache_dir=root, config=config)
        probe.fit_splits(train, valid, model=tiny_model)
        alone = probe.evaluate_split(test)
        assert point.best_epoch == probe.fit_result_.best_epoch
        assert point.hit_max_epochs == probe.fit_result_.hit_max_epochs
        assert point.scores.loss == pytest.approx(alone.loss, rel=1e-4)
    saved = ASTProbe.load(tmp_path / "hidden_state_02_rank_008", model=tiny_model, cache_dir=root)
    assert saved.evaluate_split(test).f1 == states[2].scores.f1
    row = states[0].as_dict()
    assert row["max_epochs"] == 3 and row["lr"] == 1e-2 and row["patience"] == 5
    assert {"best_epoch", "epochs", "hit_max_epochs", "batch_size", "orthogonality", "lr_factor"} <= set(row)
    assert [p.as_dict()["hit_max_epochs"] for p in states] == [p.probe.fit_result_.hit_max_epochs for p in states]

"""The probe module, its loss against a loop oracle, and the fit loop: determinism, early
stopping, the divergence guard, vocabularies, and learning on synthetic hidden states."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from shared_data import cosqa_functions
from tiny_model import one_thread  # noqa: F401  (fixture)
from torch.nn import functional as F

from codeprobe.errors import InputError
from codeprobe.probes.astprobe import (
    UNKNOWN,
    LabelVocab,
    ProbeData,
    ProbeDivergedError,
    TrainConfig,
    TupleBatch,
    code_tuple,
    evaluate,
    fit,
    predict,
)
from codeprobe.probes.astprobe.probe import ProbeModule, layout, loss_parts
from codeprobe.probes.astprobe.vocab import UNKNOWN_ID

pytestmark = pytest.mark.usefixtures("one_thread")


def test_loss_matches_a_loop_oracle():
    rng = np.random.default_rng(0)
    lengths = np.array([4, 2, 6])
    module = ProbeModule(8, 3, {"python": (5, 4)}, torch.Generator().manual_seed(1))
    h = torch.tensor(rng.normal(size=(lengths.sum(), 8)), dtype=torch.float32)
    d = torch.tensor(rng.integers(0, 3, lengths.sum() - 3), dtype=torch.float32)  # ties included
    c = torch.tensor(rng.integers(0, 5, lengths.sum() - 3))
    u = torch.tensor(rng.integers(0, 4, lengths.sum()))
    lay = layout(lengths)
    dhat, lc, lu = module(h, lay.split_index, "python")
    parts = loss_parts(dhat, lc, lu, d, c, u, lay)

    hinge, pairs, k, t, B = 0.0, 0, 0, 0, module.proj.detach()
    want_dhat = []
    for n in lengths:
        proj = h[t : t + n] @ B
        dh = [float(((proj[i + 1] - proj[i]) ** 2).sum()) for i in range(n - 1)]
        want_dhat += dh
        for i in range(n - 1):
            for j in range(n - 1):
                if d[k + i] > d[k + j]:
                    hinge += max(0.0, 1 - (dh[i] - dh[j]))
                    pairs += 1
        k, t = k + n - 1, t + n
    np.testing.assert_allclose(dhat.detach().numpy(), want_dhat, rtol=1e-5)
    assert int(parts.d_count) == pairs
    assert float(parts.d_sum.detach()) == pytest.approx(hinge, rel=1e-5)
    known = c != UNKNOWN_ID
    want_c = F.cross_entropy(lc[known], c[known]).item()
    want_u = F.cross_entropy(lu[u != UNKNOWN_ID], u[u != UNKNOWN_ID]).item()
    assert float(parts.total().detach()) == pytest.approx(hinge / pairs + want_c + want_u, rel=1e-5)
    gram = B.T @ B
    assert float(module.orthogonality().detach()) == pytest.approx(float(((gram - torch.eye(3)) ** 2).sum()))


def test_vocabulary_is_built_from_training_only():
    vocab = LabelVocab.build([["a", "b", "a"], ["c"]])
    assert vocab.labels == (UNKNOWN, "a", "b", "c")
    assert vocab.encode(["c", "zzz", "a"]).tolist() == [3, UNKNOWN_ID, 1]
    with pytest.raises(ValueError):
        LabelVocab(("a",))


def _synthetic(tuples, seed, labels, hidden=24):
    """Hidden states a rank-`hidden + len(labels)` probe can read the tuples from: consecutive
    differences of squared norm d_i + 1 (a random direction scaled by sqrt(d_i), plus a one-hot
    of c_i in the label dimensions)."""
    rng = np.random.default_rng(seed)
    out = []
    for t in tuples:
        steps = rng.normal(size=(t.n_tokens - 1, hidden))
        steps *= (np.sqrt(t.d) / np.linalg.norm(steps, axis=1))[:, None]
        onehot = np.zeros((t.n_tokens - 1, len(labels)))
        onehot[np.arange(t.n_tokens - 1), [labels.get(c, 0) for c in t.c]] = 1.0
        steps = np.hstack([steps, onehot])
        out.append(np.vstack([np.zeros((1, steps.shape[1])), np.cumsum(steps, axis=0)]))
    return np.concatenate(out).astype(np.float32)


@pytest.fixture(scope="module")
def synthetic_splits():
    tuples = [code_tuple(code, "python") for _, code in cosqa_functions()[:160]]
    parts = tuples[:100], tuples[100:130], tuples[130:]
    labels = {c: k for k, c in enumerate(sorted({c for t in tuples for c in t.c}))}
    data = [ProbeData(_synthetic(p, k, labels), TupleBatch.from_tuples(p), "python") for k, p in enumerate(parts)]
    vocabs = {"python": (LabelVocab.build(t.c for t in parts[0]), LabelVocab.build(t.u for t in parts[0]))}
    return data, vocabs


def test_fit_is_deterministic_and_learns(synthetic_splits):
    (train, valid, test), vocabs = synthetic_splits
    config = TrainConfig(lr=1e-2, max_epochs=8)
    rank = train.hidden
    a = fit(train, valid, vocabs, rank=rank, config=config, random_state=3)
    b = fit(train, valid, vocabs, rank=rank, config=config, random_state=3)
    for key, value in a.module.state_dict().items():
        assert torch.equal(value, b.module.state_dict()[key])
    assert a.history == b.history
    c = fit(train, valid, vocabs, rank=rank, config=TrainConfig(max_epochs=1), random_state=4)
    assert not torch.equal(a.module.proj, c.module.proj)

    losses = [r.valid_loss for r in a.history]
    assert losses[-1] < losses[0]
    scores = evaluate(a.module, test, vocabs["python"])
    assert scores.d_pairs > 0.7
    # Better than random splits with the gold labels' chance of being right.
    assert scores.f1 > 0.15
    pred = predict(a.module, test, vocabs["python"])
    assert pred.tuples.d.shape == test.gold.d.shape and pred.acc_c == pytest.approx(scores.acc_c)


def test_early_stopping_keeps_the_best_checkpoint(synthetic_splits):
    (train, valid, _), vocabs = synthetic_splits
    result = fit(train, valid, vocabs, rank=8, config=TrainConfig(lr=0.0, max_epochs=20, patience=3))
    # lr 0: nothing improves after epoch 1, so 1 + 3 epochs run and epoch 1 is kept.
    assert len(result.history) == 4 and result.best_epoch == 1


def test_divergence_is_rolled_back_or_reported(synthetic_splits):
    (train, valid, test), vocabs = synthetic_splits
    wild = fit(train, valid, vocabs, rank=8, config=TrainConfig(lr=50.0, max_epochs=4, patience=4))
    assert wild.rollbacks  # a huge step blows the orthogonality penalty up
    assert all(math.isfinite(float(p.detach().abs().sum())) for p in wild.module.parameters())
    broken = ProbeData(np.full(train.hidden_states.shape, np.nan, np.float16), train.gold, "python")
    with pytest.raises(ProbeDivergedError):
        fit(broken, broken, vocabs, rank=8, config=TrainConfig(max_epochs=2, patience=2))


def test_unknown_gold_labels_are_never_right(synthetic_splits):
    (train, _, _), _ = synthetic_splits
    tiny = {"python": (LabelVocab.build([["block"]]), LabelVocab.build([[]]))}
    result = fit(train, train, tiny, rank=4, config=TrainConfig(max_epochs=1))
    pred = predict(result.module, train, tiny["python"])
    gold_c = np.array(train.gold.c_names)[train.gold.c]
    assert pred.acc_c <= float(np.mean(gold_c == "block")) + 1e-12
    assert pred.acc_u == 0.0


def test_orthogonal_init_starts_the_penalty_at_zero_and_learns(synthetic_splits):
    """`TrainConfig(init="orthogonal")`: B starts with orthonormal columns (seeded), so the
    orthogonality penalty starts at 0 where the spec's uniform init starts it near
    rank (1 - hidden / 1200)^2; the label vectors keep the uniform init."""
    (train, valid, test), vocabs = synthetic_splits
    sizes = {"python": (len(vocabs["python"][0]), len(vocabs["python"][1]))}
    make = lambda init, seed: ProbeModule(256, 128, sizes, torch.Generator().manual_seed(seed), init)  # noqa: E731
    ortho, uniform = make("orthogonal", 0), make("uniform", 0)
    assert float(ortho.orthogonality().detach()) == pytest.approx(0.0, abs=1e-8)
    assert float(uniform.orthogonality().detach()) == pytest.approx(128 * (1 - 256 / 1200) ** 2, rel=0.1)
    assert torch.equal(ortho.proj, make("orthogonal", 0).proj) and not torch.equal(
        ortho.proj, make("orthogonal", 1).proj
    )
    assert torch.equal(ortho.vectors_c["python"], uniform.vectors_c["python"])
    with pytest.raises(ValueError, match="init"):
        make("zeros", 0)

    config = TrainConfig(lr=1e-2, max_epochs=8, init="orthogonal")
    result = fit(train, valid, vocabs, rank=train.hidden, config=config, random_state=3)
    assert result.history[-1].valid_loss < result.history[0].valid_loss
    assert evaluate(result.module, test, vocabs["python"]).d_pairs > 0.7
    assert config.settings()["init"] == "orthogonal"
    with pytest.raises(InputError):
        TrainConfig(init="zeros")


def test_a_probe_that_never_improved_is_marked():
    from codeprobe.probes.astprobe.sweeps import SweepPoint

    point = lambda best, epochs: SweepPoint(3, 128, None, best, (), 1.0, TrainConfig(), epochs)  # noqa: E731
    assert point(1, 6).never_improved and point(1, 6).as_dict()["never_improved"]
    assert not point(2, 7).never_improved and not point(1, 1).never_improved

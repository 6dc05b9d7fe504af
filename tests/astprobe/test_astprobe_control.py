"""AST-Probe's label control (type-keyed c and u control labels, Hewitt & Liang arXiv:1909.03368):
the control labels' distribution and consistency, and selectivity on hidden states that carry the
task's labels and not the control's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tiny_model import one_thread  # noqa: F401  (fixture)

from codeprobe.errors import InputError
from codeprobe.pipeline.methods.astprobe.control import LabelControlTasks, fit_label_control
from codeprobe.probes.astprobe import LabelVocab, ProbeData, TrainConfig, TupleBatch, fit

pytestmark = pytest.mark.usefixtures("one_thread")

C_NAMES, U_NAMES = ("block", "call", "if"), ("<empty>", "expr", "ident")


def _batch(rng, n_snippets, length, p_c=(0.6, 0.3, 0.1), p_u=(0.5, 0.35, 0.15)) -> TupleBatch:
    return TupleBatch.from_labels(
        [rng.integers(0, 4, length - 1) for _ in range(n_snippets)],
        [[C_NAMES[i] for i in rng.choice(3, length - 1, p=p_c)] for _ in range(n_snippets)],
        [[U_NAMES[i] for i in rng.choice(3, length, p=p_u)] for _ in range(n_snippets)],
    )


def _names(ids: np.ndarray, names: tuple[str, ...]) -> list[str]:
    return [names[i] for i in ids]


def _shares(labels: list[str], names: tuple[str, ...]) -> np.ndarray:
    return np.array([labels.count(x) for x in names]) / len(labels)


def test_control_labels_follow_the_training_distribution():
    rng = np.random.default_rng(0)
    gold = _batch(rng, 4000, 6)
    texts = [f"t{k}" for k in range(int(gold.lengths.sum()))]  # every token its own type
    control = LabelControlTasks.of(gold, random_state=3).gold(gold, texts)
    for ids, ctl, names in ((gold.c, control.c, gold.c_names), (gold.u, control.u, gold.u_names)):
        task = _shares(_names(ids, names), names)
        assert np.abs(_shares(_names(ctl, names), names) - task).max() < 0.02
    assert np.array_equal(control.d, gold.d) and np.array_equal(control.lengths, gold.lengths)


def test_a_type_keeps_its_label_across_splits_and_pairs_key_c():
    rng = np.random.default_rng(1)
    vocab = [f"w{k}" for k in range(12)]
    train, other = _batch(rng, 300, 5), _batch(rng, 200, 4)
    tasks = LabelControlTasks.of(train, random_state=0)
    texts = {id(b): [vocab[i] for i in rng.integers(0, 12, int(b.lengths.sum()))] for b in (train, other)}
    u_of, c_of = {}, {}
    for b in (train, other):
        control, t = tasks.gold(b, texts[id(b)]), texts[id(b)]
        for text, label in zip(t, control.u):
            assert u_of.setdefault(text, label) == label
        left = np.delete(np.arange(len(t)), np.cumsum(b.lengths) - 1)
        for i, label in zip(left, control.c):
            assert c_of.setdefault((t[i], t[i + 1]), label) == label
    # c is keyed by the pair: the same left type gets several c labels.
    assert any(len({v for (a, _), v in c_of.items() if a == w}) > 1 for w in vocab)
    reseeded = LabelControlTasks.of(train, random_state=1).gold(train, texts[id(train)])
    assert not np.array_equal(reseeded.u, tasks.gold(train, texts[id(train)]).u)


def test_wrong_number_of_texts_is_refused():
    gold = _batch(np.random.default_rng(2), 3, 4)
    with pytest.raises(InputError, match="token texts"):
        LabelControlTasks.of(gold).gold(gold, ["x"] * 5)


def _carrying(gold: TupleBatch, rng) -> np.ndarray:
    """float32 (N, 10) hidden states from which u (one-hot, per token) and c (a running count
    whose step from token i to i + 1 is c_i's one-hot) are linear, plus noise."""
    # By name: a batch numbers its labels in order of appearance, which differs between splits.
    u = np.eye(3)[[U_NAMES.index(gold.u_names[i]) for i in gold.u]]
    steps = np.eye(3)[[C_NAMES.index(gold.c_names[i]) for i in gold.c]]
    z, k, s = np.zeros((u.shape[0], 3)), 0, 0
    for n in gold.lengths:
        z[k + 1 : k + n] = np.cumsum(steps[s : s + n - 1], axis=0)
        k, s = k + n, s + n - 1
    return np.hstack([u, z, 0.1 * rng.normal(size=(u.shape[0], 4))]).astype(np.float32)


def test_selectivity_is_positive_when_features_carry_the_task_not_the_control():
    rng = np.random.default_rng(4)
    splits, texts, k = [], [], 0
    for n in (300, 60, 60):
        gold = _batch(rng, n, 6)
        splits.append(ProbeData(_carrying(gold, rng), gold, "python"))
        size = int(gold.lengths.sum())
        texts.append([f"t{j}" for j in range(k, k + size)])  # types unseen elsewhere: no control to learn
        k += size
    config = dataclasses.replace(TrainConfig(), max_epochs=40, threads=1, lr=1e-2)
    # The task probe shares the training recipe; its vocabularies are the training split's.
    vocabs = (
        LabelVocab.build([[splits[0].gold.c_names[i] for i in splits[0].gold.c]]),
        LabelVocab.build([[splits[0].gold.u_names[i] for i in splits[0].gold.u]]),
    )
    task = fit(splits[0], splits[1], {"python": vocabs}, 8, config=config).module
    result = fit_label_control(splits, texts, (task, vocabs), 8, config=config)
    for t, c in ((result.task_c, result.control_c), (result.task_u, result.control_u)):
        assert t.accuracy > 0.9 and c.accuracy < 0.7
        assert np.array_equal(t.tokens, c.tokens)
        diff = t.difference(c)
        assert diff.low > 0 and np.isfinite(diff.high)
    assert result.control_epochs >= result.control_best_epoch >= 1


def _saved_control(tmp_path, body: dict) -> dict | None:
    from codeprobe.pipeline.methods.astprobe.summary import _label_control
    from codeprobe.pipeline.runfolder import ResultFolder, write_step_json

    write_step_json(tmp_path / "label_control.json", {"hidden_state": 2, "rank": 8, "seconds": 1.5, **body}, "k")
    return _label_control(ResultFolder(tmp_path))


def test_summary_and_report_of_a_label_control(tmp_path):
    from codeprobe.pipeline.methods.astprobe.report import _control_table

    counts = {
        "task_c": {"correct": [3, 4, 2], "tokens": [4, 4, 3]},
        "task_u": {"correct": [5, 5, 4], "tokens": [5, 5, 4]},
        "control_c": {"correct": [1, 2, 1], "tokens": [4, 4, 3]},
        "control_u": {"correct": [2, 1, 2], "tokens": [5, 5, 4]},
    }
    lc = _saved_control(tmp_path, {"control_epochs": 4, "control_best_epoch": 2, **counts})
    assert lc["u"]["task"] == 1.0 and np.isclose(lc["u"]["control"], (2 / 5 + 1 / 5 + 2 / 4) / 3)
    assert np.isclose(lc["c"]["selectivity"]["mean"], lc["c"]["task"] - lc["c"]["control"], atol=1e-5)
    assert lc["u"]["selectivity"]["distinguishable"] and lc["u"]["selectivity"]["ci"][0] > 0
    assert any(line.startswith("| u | 1.000") for line in _control_table(lc))
    diverged = _saved_control(tmp_path, {"error": "no finite validation loss"})
    assert "c" not in diverged and "no finite validation loss" in _control_table(diverged)[0]

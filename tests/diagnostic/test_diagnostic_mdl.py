"""MDL probing by the online code (Voita & Titov, arXiv:2003.12298): the blocks, the codelength
against hand computations, and an easy task compressing more than its control task."""

from __future__ import annotations

import math

import numpy as np
import pytest
from synthetic_tokens import snippets

from codeprobe.errors import InputError
from codeprobe.probes.diagnostic import (
    ONLINE_PORTIONS,
    ControlTask,
    OnlineCode,
    block_boundaries,
    codelength,
    online_code,
)
from codeprobe.probes.structural import StructuralTrainConfig

QUICK = StructuralTrainConfig(lr=0.01, max_epochs=8, threads=1)


def test_block_boundaries_are_the_papers_timestamps():
    assert block_boundaries(10_000).tolist() == [0, 10, 20, 40, 80, 160, 320, 625, 1250, 2500, 5000, 10_000]
    # 100 tokens: 0.1, 0.2 and 0.4 % round to 0, so at least 1, and repeats go; 12.5 rounds to even.
    assert block_boundaries(100).tolist() == [0, 1, 2, 3, 6, 12, 25, 50, 100]
    assert block_boundaries(2, (0.5, 1.0)).tolist() == [0, 1, 2]
    assert len(ONLINE_PORTIONS) == 11 and ONLINE_PORTIONS[-1] == 1.0


@pytest.mark.parametrize("portions", [(0.5,), (0.5, 0.9), (0.5, 0.4, 1.0), (0.0, 1.0), (0.5, 1.5)])
def test_bad_portions_are_refused(portions):
    with pytest.raises(InputError, match="portions"):
        block_boundaries(100, portions)


def test_codelength_by_hand():
    """-log2 0.5 - log2 0.75 - log2 0.5 = 2 + log2(4/3) bits; two models at once."""
    probs = np.array([[[0.5, 0.5], [0.25, 0.75], [0.5, 0.5]], [[1.0, 0.0], [0.5, 0.5], [0.125, 0.875]]])
    labels = np.array([0, 1, 1])
    with np.errstate(divide="ignore"):
        bits = codelength(np.log(probs), labels)
    np.testing.assert_allclose(bits, [2 + math.log2(4 / 3), 1 - math.log2(0.875)])


def test_online_code_sums_by_hand():
    code = OnlineCode(boundaries=np.array([0, 2, 5]), block_bits=np.array([[4.0, 1.0], [4.0, 6.0]]), n_classes=4)
    assert code.n_tokens == 5 and code.uniform_bits == 10.0
    np.testing.assert_allclose(code.online_bits, [5.0, 10.0])
    np.testing.assert_allclose(code.compression, [2.0, 1.0])
    assert code.as_dict()["compression"] == [2.0, 1.0]


def test_untrained_classifiers_code_every_block_uniformly():
    """lr 0 leaves every block's classifier at its zero start, p = 1/K for every token: the
    online code is then the uniform code, block by block, and compression is 1."""
    X, y = snippets(40, seed=2)
    X_valid, y_valid = snippets(10, seed=3)
    code = online_code(
        X, y, X_valid=X_valid, y_valid=y_valid, n_classes=3, config=StructuralTrainConfig(lr=0.0, max_epochs=1)
    )
    n = sum(t.size for t in y)
    assert code.n_tokens == n and code.boundaries.tolist() == block_boundaries(n).tolist()
    np.testing.assert_allclose(code.block_bits, np.diff(code.boundaries)[None].repeat(2, 0) * math.log2(3))
    np.testing.assert_allclose(code.online_bits, n * math.log2(3))
    np.testing.assert_allclose(code.compression, 1.0)


def test_an_easy_task_compresses_more_than_its_control():
    """Vectors that carry the task's class: the task compresses far better than a control task
    (labels by random token types, which the vectors do not carry); noise compresses neither."""
    rng = np.random.default_rng(4)
    X, y = snippets(150, seed=4)
    X_valid, y_valid = snippets(30, seed=5)
    texts = [[f"t{k}" for k in rng.integers(0, 300, size=t.size)] for t in y + y_valid]
    control = ControlTask.from_labels(y, 3, random_state=0)
    c = [control.labels(t) for t in texts]
    task = online_code(X, y, X_valid=X_valid, y_valid=y_valid, n_classes=3, config=QUICK)
    ctl = online_code(X, c[: len(y)], X_valid=X_valid, y_valid=c[len(y) :], n_classes=3, config=QUICK)
    assert task.compression[1] > 2.5 and ctl.compression[1] < 1.2
    assert task.compression[1] > 2 * ctl.compression[1]
    assert task.compression[0] < 1.2 and task.online_bits[1] < task.online_bits[0]


def test_online_code_checks_its_inputs():
    X, y = snippets(5, seed=6)
    with pytest.raises(InputError, match="at least 2 classes"):
        online_code(X, y, X_valid=X, y_valid=y, n_classes=1)
    with pytest.raises(InputError, match="class ids must lie in 0..1"):
        online_code(X, y, X_valid=X, y_valid=y, n_classes=2)

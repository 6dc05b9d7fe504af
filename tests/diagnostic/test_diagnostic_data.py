"""The joined token inputs: snippets' tokens found, taken, cut and batched where they are."""

from __future__ import annotations

import numpy as np

from codeprobe.probes.diagnostic.data import labelled_tokens


def _data():
    # Snippet k's token j has vector value 100 k + j (hidden state s adds 1000 s) and label j.
    X = [np.stack([np.full((n, 2), 1000 * s + 100 * k) + np.arange(n)[:, None] for s in range(2)]) for k, n in
         enumerate((3, 2, 4))]  # fmt: skip
    y = [np.arange(len(x[0])) for x in X]
    return labelled_tokens([x.astype(np.float16) for x in X], y, stacked=True)


def test_tokens_are_joined_in_order_and_keep_their_dtype():
    data = _data()
    assert data.h.dtype == np.float16 and data.h.shape == (2, 9, 2)
    assert data.offsets.tolist() == [0, 3, 5, 9] and len(data) == 3 and data.n_tokens == 9
    assert data.h[1, :, 0].tolist() == [1000, 1001, 1002, 1100, 1101, 1200, 1201, 1202, 1203]


def test_token_index_take_and_prefix():
    data = _data()
    assert data.token_index(np.array([2, 0])).tolist() == [5, 6, 7, 8, 0, 1, 2]
    taken = data.take(np.array([2, 0]))
    assert taken.offsets.tolist() == [0, 4, 7] and taken.labels.tolist() == [0, 1, 2, 3, 0, 1, 2]
    assert taken.h[0, :, 0].tolist() == [200, 201, 202, 203, 0, 1, 2]
    cut = data.prefix(4)
    assert cut.offsets.tolist() == [0, 3, 4] and cut.n_tokens == 4 and len(cut) == 2
    assert data.prefix(5).offsets.tolist() == [0, 3, 5] and data.prefix(9).offsets.tolist() == [0, 3, 5, 9]


def test_batch_of_some_hidden_states():
    data = _data()
    h, labels = data.batch(np.array([1]), np.array([1]), "cpu")
    assert h.dtype.is_floating_point and tuple(h.shape) == (1, 2, 2)
    assert h[0, :, 0].tolist() == [1100, 1101] and labels.tolist() == [0, 1]
    h, _ = data.batch(np.array([1, 0]), np.array([0, 1]), "cpu")
    assert h[:, 0, 0].tolist() == [100, 1100] and tuple(h.shape) == (2, 5, 2)

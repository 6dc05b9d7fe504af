"""Both pooling backends against the dense definition W A W^T / W H, on real alignments (shared
subwords, whitespace-only subwords inside a token, a truncated snippet) and padded batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codeprobe.alignment import align
from codeprobe.model.pooling import KernelPooling, Members, SparsePooling, row_sum_error
from codeprobe.syntax import parse

CODES = [
    "def f(x):\n    return x+1\n",
    "s = 'a    b'  # spaces inside one token\nprint(s)\n",
    "class A:\n    def g(self, y): return {y: [1, 2]}\n",
]


def alignments():
    """(alignment, kept rows) with subwords as whitespace-split pieces and single characters,
    so that tokens share subwords and whitespace-only subwords sit inside tokens."""
    out = []
    for code in CODES:
        tokens = parse(code, "python").tokens()
        spans = [(i, i + 1) if code[i] not in "+:(" else (i - 1, i + 1) for i in range(1, len(code))]
        al = align(code, np.array(spans), tokens.start_char, tokens.end_char)
        out.append((al, np.arange(al.n_kept)))
    al, rows = out[-1]
    out.append((al, rows[: rows.shape[0] // 2]))  # a truncated snippet keeps a prefix of its tokens
    return out


def test_members_are_the_pooling_matrix():
    for al, rows in alignments():
        m = Members.of(al, rows, prefix=2)
        w = np.zeros((m.n_tokens, al.n_subwords + 2), np.float32)
        for i in range(m.n_tokens):
            w[i, m.positions[m.offsets[i] : m.offsets[i + 1]]] = 1.0 / m.sizes[i]
        np.testing.assert_array_equal(w[:, 2:], al.pooling[rows])
    assert any(al.n_shared_subwords for al, _ in alignments())


def batch(heads: int = 3, seed: int = 0):
    pairs = alignments()
    members = [Members.of(al, rows, prefix=1) for al, rows in pairs]
    lengths = [al.n_subwords + 2 for al, _ in pairs]
    n = max(lengths)
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(len(pairs), heads, n, n, generator=gen)
    key_mask = torch.arange(n)[None, :] < torch.tensor(lengths)[:, None]
    att = torch.softmax(scores.masked_fill(~key_mask[:, None, None, :], float("-inf")), dim=-1)
    hidden = [torch.randn(len(pairs), n, 5, generator=gen) for _ in range(3)]
    return members, lengths, att, hidden


@pytest.mark.parametrize("backend", ["kernels", "sparse"])
@pytest.mark.parametrize("heads", ["mean", "all", "max"])
def test_backends_equal_the_dense_definition(backend, heads):
    members, lengths, att, hidden = batch()
    args = (members, members, lengths, 2, att.shape[1], 5, heads)
    pooling = KernelPooling(*args) if backend == "kernels" else SparsePooling(*args, "cpu")
    for layer in range(2):
        pooling.pool_attention(layer, att * (layer + 1) / (layer + 1))
    pooling.pool_hidden_states(tuple(hidden))
    assert pooling.row_sum_errors().max() < 1e-5
    for b, (m, (a, v)) in enumerate(zip(members, pooling.results())):
        w = np.zeros((m.n_tokens, att.shape[-1]))
        for i in range(m.n_tokens):
            w[i, m.positions[m.offsets[i] : m.offsets[i + 1]]] = 1.0 / m.sizes[i]
        per_head = att[b].double().numpy()
        mixed = {"mean": per_head.mean(0), "max": per_head.max(0), "all": per_head}[heads]
        expected = w @ mixed @ w.T
        assert a.dtype == np.float32 and a.shape == (2, *expected.shape)
        np.testing.assert_allclose(a[0], expected, rtol=0, atol=1e-6)
        np.testing.assert_allclose(v, np.stack([w @ h[b].double().numpy() for h in hidden]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("backend", ["kernels", "sparse"])
def test_attention_to_padding_is_caught(backend):
    members, lengths, att, _ = batch()
    leaky = torch.full_like(att, 1.0 / att.shape[-1])  # uniform over every key, padded ones too
    args = (members, None, lengths, 1, att.shape[1], 5, "mean")
    pooling = KernelPooling(*args) if backend == "kernels" else SparsePooling(*args, "cpu")
    pooling.pool_attention(0, leaky)
    assert pooling.row_sum_errors()[0] > 0.1


def test_row_sum_error():
    real, padded = np.array([1.0, 0.9, 1.4, 1.2]), np.array([0.0, 0.1, 0.0, 0.3])
    np.testing.assert_allclose(row_sum_error(real, padded, head_max=False), [0, 0.2, 0.4, 0.5])
    np.testing.assert_allclose(row_sum_error(real, padded, head_max=True), [0, 0.1, 0, 0.3])

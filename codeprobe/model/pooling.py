"""Pooling of subword attention and hidden states to code tokens: the block mean W A W^T of every
layer and the subword mean W H of every hidden state, for one batch, as soon as the model has
produced them.

W is the alignment's pooling matrix (`Alignment.pooling`): W[i, p] = 1/|S_i| for the subwords
S_i of kept token i. Two backends compute the same numbers:

- `KernelPooling` (models on the CPU): compiled loops over each snippet's own memberships,
  float64 accumulation, written straight into the snippet's result arrays. Pooling reads each
  snippet's attention once per layer; nothing the size of a padded batch is built.
- `SparsePooling` (any torch device, e.g. CUDA): W as a sparse block-diagonal matrix over the
  flattened batch, so the products stay on the model's device.

Head modes (`heads`): "mean" pools the head mean, "all" every head, "max" the maximum over heads
of the subword attention (CAT-probing's reference `action_per_head="max"`, arXiv 2210.04633).
Both backends also give, per layer and token, the pooled query row's sums over the real and the
padded keys, which `row_sum_error` turns into the extractor's softmax check.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numba
import numpy as np
import torch

from codeprobe.alignment import Alignment


@dataclass(frozen=True, eq=False)
class Members:
    """One snippet's kept tokens as lists of model input positions (CSR).

    Attributes:
        positions: int64 (p,), input positions (specials included in the count) of the tokens'
            subwords, token by token; a subword shared by two tokens appears under both.
        offsets: int64 (k + 1,), token i's positions are positions[offsets[i]:offsets[i + 1]].
    """

    positions: np.ndarray
    offsets: np.ndarray

    @classmethod
    def of(cls, alignment: Alignment, rows: np.ndarray, prefix: int) -> Members:
        """The memberships of `alignment`'s kept `rows` (in that order), positions shifted past
        `prefix` special tokens. Truncation keeps only whole tokens, so every position of a kept
        row is inside the input."""
        keep = np.zeros(alignment.n_kept, dtype=bool)
        keep[rows] = True
        row_of = np.cumsum(keep) - 1
        sel = keep[alignment.pair_token]
        token = row_of[alignment.pair_token[sel]]
        order = np.argsort(token, kind="stable")  # pairs come sorted by subword
        offsets = np.zeros(rows.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(token, minlength=rows.shape[0]), out=offsets[1:])
        return cls(prefix + alignment.pair_subword[sel][order], offsets)

    @property
    def n_tokens(self) -> int:
        return int(self.offsets.shape[0]) - 1

    @property
    def sizes(self) -> np.ndarray:
        """int64 (k,): |S_i|."""
        return np.diff(self.offsets)


def row_sum_error(real: np.ndarray, padded: np.ndarray, head_max: bool) -> np.ndarray:
    """How far pooled query rows are from softmax rows that give padded keys nothing.

    real, padded: a pooled row's sums over the real and over the padded keys. A mean of softmax
    rows sums to 1 over the real keys; a maximum over heads sums to at least 1 there, and to 0
    over the padded keys. Returns the error, elementwise.
    """
    if head_max:
        return np.where(real < 1.0, 1.0 - real, np.abs(padded))
    return np.abs(real - 1.0) + np.abs(padded)


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz", "arcp", "contract"})
def _sum(x, lo, hi):  # pragma: no cover - compiled
    """x[lo:hi].sum(), vectorised in any order: the row sums are a softmax check, not a result."""
    s = 0.0
    for q in range(lo, hi):
        s += x[q]
    return s


@numba.njit(cache=True, nogil=True)
def _pool_attention(att, n_real, positions, offsets, head_mean, out, sums):  # pragma: no cover - compiled
    """att (H, n, n) one snippet's attention (query rows, padded width n, real keys < n_real);
    out (H_out, k, k) float32: W A_h W^T per head, or of the head mean (H_out = 1);
    sums (H_out, k, 2): each pooled query row's sum over the real and the padded keys."""
    n_heads, n = att.shape[0], att.shape[2]
    k = offsets.shape[0] - 1
    # Most tokens are one subword: their key cell is one read of the pooled row (the one-term
    # sum, exactly), in a loop without branches; only the others loop over their subwords.
    sizes = offsets[1:] - offsets[:-1]
    single = np.flatnonzero(sizes == 1)
    single_positions = positions[offsets[single]]
    multi = np.flatnonzero(sizes != 1)
    row = np.empty(n, np.float64)
    for o in range(out.shape[0]):
        h0 = 0 if head_mean else o
        h1 = n_heads if head_mean else o + 1
        for i in range(k):
            row[:] = 0.0
            for h in range(h0, h1):
                for a in range(offsets[i], offsets[i + 1]):
                    src = att[h, positions[a]]
                    for q in range(n):
                        row[q] += src[q]
            row *= 1.0 / ((h1 - h0) * sizes[i])
            sums[o, i, 0] = _sum(row, 0, n_real)
            sums[o, i, 1] = _sum(row, n_real, n)
            pooled = out[o, i]
            for t in range(single.shape[0]):
                pooled[single[t]] = row[single_positions[t]]
            for j in multi:
                s = 0.0
                for b in range(offsets[j], offsets[j + 1]):
                    s += row[positions[b]]
                pooled[j] = s / sizes[j]


@numba.njit(cache=True, nogil=True)
def _pool_rows(x, positions, offsets, out):  # pragma: no cover - compiled
    """x (n, d) one snippet's hidden states; out (k, d) float32: each token's subword mean."""
    k, d = offsets.shape[0] - 1, x.shape[1]
    acc = np.empty(d, np.float64)
    for i in range(k):
        acc[:] = 0.0
        for a in range(offsets[i], offsets[i + 1]):
            src = x[positions[a]]
            for c in range(d):
                acc[c] += src[c]
        inv = 1.0 / (offsets[i + 1] - offsets[i])
        for c in range(d):
            out[i, c] = acc[c] * inv


@cache
def _workers() -> ThreadPoolExecutor:
    """Threads for the kernels (compiled without the GIL): the model waits while a layer's
    attention is pooled, so every core can pool."""
    return ThreadPoolExecutor(max_workers=os.cpu_count(), thread_name_prefix="codeprobe-pooling")


def _float32_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().to(torch.float32).contiguous().numpy()


class KernelPooling:
    """Pooling of one batch on the CPU with compiled per-snippet loops (see the module doc).

    Args:
        attention_members, hidden_state_members: per snippet of the batch, in batch order (None: that
            output is not computed).
        lengths: per snippet, its input length (specials included); the rest is padding.
        n_layers, n_heads, hidden_size: the model's.
        heads: "mean", "all" or "max".
    """

    def __init__(
        self,
        attention_members: list[Members] | None,
        hidden_state_members: list[Members] | None,
        lengths: list[int],
        n_layers: int,
        n_heads: int,
        hidden_size: int,
        heads: str,
    ):
        self.attention_members, self.hidden_state_members = attention_members, hidden_state_members
        self.lengths = lengths
        self.heads = heads
        head_dims = (n_heads,) if heads == "all" else ()
        n_out = n_heads if heads == "all" else 1
        self._attention = self._sums = None
        if attention_members is not None:
            self._attention = [
                np.empty((n_layers, *head_dims, m.n_tokens, m.n_tokens), np.float32) for m in attention_members
            ]
            self._sums = [np.empty((n_layers, n_out, m.n_tokens, 2)) for m in attention_members]
        self._hidden_states = None
        if hidden_state_members is not None:
            self._hidden_states = [
                np.empty((n_layers + 1, m.n_tokens, hidden_size), np.float32) for m in hidden_state_members
            ]

    def pool_attention(self, layer: int, weights: torch.Tensor) -> None:
        """weights (B, H, n, n) of transformer layer `layer`."""
        if self.heads == "max":
            weights = weights.amax(dim=1, keepdim=True)
        att = _float32_numpy(weights)

        def pool(b: int) -> None:
            m, sums = self.attention_members[b], self._sums[b][layer]
            out = self._attention[b][layer].reshape(sums.shape[0], m.n_tokens, m.n_tokens)
            _pool_attention(att[b], self.lengths[b], m.positions, m.offsets, self.heads != "all", out, sums)

        for _ in _workers().map(pool, range(len(self.attention_members))):  # re-raises a kernel's error
            pass

    def pool_hidden_states(self, hidden_states: tuple[torch.Tensor, ...]) -> None:
        """hidden_states: n_layers + 1 tensors (B, n, d)."""
        for index, hidden in enumerate(hidden_states):
            x = _float32_numpy(hidden)
            for b, m in enumerate(self.hidden_state_members):
                _pool_rows(x[b], m.positions, m.offsets, self._hidden_states[b][index])

    def row_sum_errors(self) -> np.ndarray:
        """(n_layers,) the largest `row_sum_error` of each layer over the batch's tokens."""
        per_snippet = [
            row_sum_error(s[..., 0], s[..., 1], self.heads == "max").max(axis=(1, 2), initial=0.0) for s in self._sums
        ]
        return np.max(per_snippet, axis=0)

    def results(self) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
        """Per snippet: (attention (L, [H,] k, k), hidden states (L + 1, kh, d)), float32."""
        n = len(self.lengths)
        att = self._attention or [None] * n
        hs = self._hidden_states or [None] * n
        return list(zip(att, hs))


def _sparse(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int], device) -> torch.Tensor:
    """Coalesced COO matrix from entries (sorted here, so no coalescing pass is needed)."""
    order = np.lexsort((cols, rows))
    index = torch.from_numpy(np.stack([rows[order], cols[order]]).astype(np.int64))
    value = torch.from_numpy(values[order].astype(np.float32))
    return torch.sparse_coo_tensor(index, value, shape, is_coalesced=True, check_invariants=False).to(device)


def _entries(members: list[Members]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A batch's pooling entries: snippet, token row, input position, 1/|S_i|."""
    batch = np.concatenate([np.full(m.positions.shape[0], b) for b, m in enumerate(members)])
    row = np.concatenate([np.repeat(np.arange(m.n_tokens), m.sizes) for m in members])
    weight = np.concatenate([np.repeat(1.0 / m.sizes, m.sizes) for m in members])
    return batch, row, np.concatenate([m.positions for m in members]), weight


class _SparseW:
    """W of a batch as sparse matrices over the flattened batch (block-diagonal: snippet b's
    token rows only read snippet b's positions; a few non-zeros per row)."""

    def __init__(self, members: list[Members], n: int, device):
        self.b, self.k, self.n = len(members), max(1, *(m.n_tokens for m in members)), n
        self.entries = _entries(members)
        batch, row, col, weight = self.entries
        self.w = _sparse(batch * self.k + row, batch * n + col, weight, (self.b * self.k, self.b * n), device)


class SparsePooling:
    """Pooling of one batch with torch sparse products on the model's device (see the module
    doc); the same interface as `KernelPooling`."""

    def __init__(
        self,
        attention_members: list[Members] | None,
        hidden_state_members: list[Members] | None,
        lengths: list[int],
        n_layers: int,
        n_heads: int,
        hidden_size: int,
        heads: str,
        device,
    ):
        n = max(lengths)
        self.heads, self.n_heads, self.device = heads, n_heads, device
        self.attention_members, self.hidden_state_members = attention_members, hidden_state_members
        key_mask = np.zeros((len(lengths), n, 1), np.float32)
        for b, length in enumerate(lengths):
            key_mask[b, :length] = 1.0
        self.key_mask = torch.from_numpy(key_mask).to(device)
        self._pooled: list[torch.Tensor] = []
        self._sums: list[torch.Tensor] = []
        self._hidden_states: list[torch.Tensor] = []
        self.w = self.w_att = None
        if attention_members is not None:
            self.w = _SparseW(attention_members, n, device)
            self.w_att = self._attention_matrix(self.w, device)
        self.w_hs = None
        if hidden_state_members is not None:
            self.w_hs = (
                self.w if hidden_state_members is attention_members else _SparseW(hidden_state_members, n, device)
            )

    def _attention_matrix(self, w: _SparseW, device) -> torch.Tensor:
        """W applied to the attention flattened to (B * H * n, n): the head mean and the row
        pooling in one product ((B * k, B * H * n), 1/(|S_i| H)); per head (B * k * H,
        B * H * n), 1/|S_i|; for the head max, W itself (applied after the maximum)."""
        if self.heads == "max":
            return w.w
        batch, row, col, weight = w.entries
        b, k, n, h = w.b, w.k, w.n, self.n_heads
        head_ids = np.arange(h)
        att_cols = ((batch[:, None] * h + head_ids) * n + col[:, None]).ravel()
        if self.heads == "all":
            att_rows = ((batch * k + row)[:, None] * h + head_ids).ravel()
            return _sparse(att_rows, att_cols, np.repeat(weight, h), (b * k * h, b * h * n), device)
        att_rows = np.repeat(batch * k + row, h)
        return _sparse(att_rows, att_cols, np.repeat(weight / h, h), (b * k, b * h * n), device)

    def pool_attention(self, layer: int, weights: torch.Tensor) -> None:
        """weights (B, H, n, n) of the next transformer layer (layers come in order)."""
        w = self.w
        b, k, n = w.b, w.k, w.n
        if self.heads == "max":
            weights = weights.amax(dim=1)
        flat = weights.reshape(-1, n).to(self.device, torch.float32)  # a split model's layer: to the inputs'
        by_row = torch.sparse.mm(self.w_att, flat)  # query rows pooled: (B*k, n) or (B*k*H, n)
        h = by_row.shape[0] // (b * k)
        by_row = by_row.view(b, k, h, n)
        real = torch.matmul(by_row, self.key_mask[:, None]).squeeze(-1)  # (B, k, H_out)
        self._sums.append(torch.stack([real, by_row.sum(dim=-1) - real], dim=-1))
        cols = by_row.permute(0, 3, 1, 2).reshape(b * n, k * h)
        pooled = torch.sparse.mm(w.w, cols).view(b, k, k, h)  # [key, query, head]
        self._pooled.append(pooled.permute(0, 3, 2, 1))  # (B, H_out, query, key)

    def pool_hidden_states(self, hidden_states: tuple[torch.Tensor, ...]) -> None:
        w = self.w_hs
        for hidden in hidden_states:
            flat = hidden.reshape(w.b * w.n, -1).to(self.device, torch.float32)
            self._hidden_states.append(torch.sparse.mm(w.w, flat).view(w.b, w.k, -1))

    def row_sum_errors(self) -> np.ndarray:
        sums = torch.stack(self._sums).cpu().numpy()  # (L, B, k, H_out, 2)
        valid = np.zeros(sums.shape[1:3], bool)
        for b, m in enumerate(self.attention_members):
            valid[b, : m.n_tokens] = True
        err = row_sum_error(sums[..., 0], sums[..., 1], self.heads == "max")
        return np.where(valid[None, :, :, None], err, 0.0).max(axis=(1, 2, 3))

    def results(self) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
        attention = hidden_states = None
        if self._pooled:
            attention = torch.stack(self._pooled, dim=1).cpu().numpy()  # (B, L, H_out, k, k)
            if self.heads != "all":
                attention = attention[:, :, 0]
        if self._hidden_states:
            hidden_states = torch.stack(self._hidden_states, dim=1).cpu().numpy()  # (B, L + 1, k, d)
        out = []
        for b in range(len(self.key_mask)):
            att = hs = None
            if attention is not None:
                k = self.attention_members[b].n_tokens
                att = np.ascontiguousarray(attention[b, ..., :k, :k])
            if hidden_states is not None:
                hs = np.ascontiguousarray(hidden_states[b, :, : self.hidden_state_members[b].n_tokens])
            out.append((att, hs))
        return out

"""The AST-Probe module and its loss, on flat token batches (no padding anywhere).

A batch holds the token vectors of several snippets back to back, (N, hidden). Consecutive
differences are taken over the whole flat array and the ones that straddle two snippets are
dropped by index. The pairwise d loss runs over an explicit list of the (i, j) pairs inside each
snippet, sum of L^2 over the batch, rather than a (B, L_max, L_max) block that one long snippet
would inflate for the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from codeprobe.probes.astprobe.vocab import UNKNOWN_ID

INIT_RANGE = 0.05
ORTHOGONALITY_WEIGHT = 5.0


class ProbeModule(nn.Module):
    """Projection B (hidden x rank) shared by all languages, label vectors V_c (rank x |C|) and
    V_u (rank x |U|) per language; no bias; uniform(-0.05, 0.05) init.

    t_i = h_i B, delta_i = t_i+1 - t_i, dhat_i = ||delta_i||^2, c logits = delta_i V_c,
    u logits = t_i V_u.
    """

    def __init__(
        self,
        hidden: int,
        rank: int,
        label_sizes: dict[str, tuple[int, int]],
        generator: torch.Generator | None = None,
    ) -> None:
        """label_sizes: language -> (|C|, |U|)."""
        super().__init__()
        self.proj = nn.Parameter(_uniform((hidden, rank), generator))
        self.vectors_c = nn.ParameterDict(
            {lang: nn.Parameter(_uniform((rank, nc), generator)) for lang, (nc, _) in label_sizes.items()}
        )
        self.vectors_u = nn.ParameterDict(
            {lang: nn.Parameter(_uniform((rank, nu), generator)) for lang, (_, nu) in label_sizes.items()}
        )

    @property
    def rank(self) -> int:
        return int(self.proj.shape[1])

    def forward(self, vectors: torch.Tensor, split_index: torch.Tensor, language: str):
        """Scores for a flat batch.

        Args:
            vectors: float (N, hidden), token vectors of the batch's snippets back to back.
            split_index: long (M,), the flat index i of every pair (i, i + 1) inside one snippet.
            language: whose label vectors to use.

        Returns:
            dhat (M,), c logits (M, |C|), u logits (N, |U|).
        """
        t = vectors @ self.proj
        delta = t[split_index + 1] - t[split_index]
        dhat = (delta * delta).sum(dim=1)
        return dhat, delta @ self.vectors_c[language], t @ self.vectors_u[language]

    def orthogonality(self) -> torch.Tensor:
        """||B^T B - I||_F^2."""
        gram = self.proj.T @ self.proj
        eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
        return ((gram - eye) ** 2).sum()


@dataclass(frozen=True)
class BatchLayout:
    """Index arrays of one flat batch (see `layout`), as torch tensors."""

    split_index: torch.Tensor  # long (M,): flat token index i of each in-snippet pair (i, i + 1)
    pair_a: torch.Tensor  # long (P,): with pair_b, every ordered pair (a, b) of split points
    pair_b: torch.Tensor  # long (P,): of one snippet, as indices into the M split points


def layout(lengths: np.ndarray, device: torch.device | str = "cpu") -> BatchLayout:
    """Index arrays for a flat batch of snippets with `lengths` tokens each."""
    lengths = np.asarray(lengths, dtype=np.int64)
    m = lengths - 1  # split points per snippet
    starts = np.cumsum(lengths) - lengths
    row = np.repeat(np.arange(lengths.size), m)
    col = np.arange(int(m.sum())) - np.repeat(np.cumsum(m) - m, m)
    # All m_s^2 pairs of each snippet: k -> (k // m_s, k % m_s), offset to the snippet's points.
    sq = m * m
    k = np.arange(int(sq.sum())) - np.repeat(np.cumsum(sq) - sq, sq)
    width = np.repeat(m, sq)
    first = np.repeat(np.cumsum(m) - m, sq)
    as_tensor = lambda a: torch.as_tensor(a, dtype=torch.long, device=device)  # noqa: E731
    return BatchLayout(
        split_index=as_tensor(starts[row] + col),
        pair_a=as_tensor(first + k // width),
        pair_b=as_tensor(first + k % width),
    )


@dataclass(frozen=True)
class LossParts:
    """Sums and counts, so that means over several batches are exact."""

    d_sum: torch.Tensor
    d_count: torch.Tensor
    c_sum: torch.Tensor
    c_count: torch.Tensor
    u_sum: torch.Tensor
    u_count: torch.Tensor

    def total(self) -> torch.Tensor:
        """L_d + L_c + L_u, each a mean over its own items (0 if it has none)."""
        return sum(s / c.clamp(min=1) for s, c in ((self.d_sum, self.d_count),
                                                      (self.c_sum, self.c_count),
                                                      (self.u_sum, self.u_count)))


def loss_parts(
    dhat: torch.Tensor,
    c_logits: torch.Tensor,
    u_logits: torch.Tensor,
    d_gold: torch.Tensor,
    c_gold: torch.Tensor,
    u_gold: torch.Tensor,
    batch: BatchLayout,
) -> LossParts:
    """The loss terms of one batch.

    L_d: relu(1 - (dhat_i - dhat_j)) over all pairs (i, j) of one snippet with gold d_i > d_j
    (ties ignored). L_c, L_u: cross-entropy; targets equal to `<unk>` are ignored.
    """
    ordered = d_gold[batch.pair_a] > d_gold[batch.pair_b]
    a, b = batch.pair_a[ordered], batch.pair_b[ordered]
    d_sum = F.relu(1.0 - (dhat[a] - dhat[b])).sum()
    c_known = c_gold != UNKNOWN_ID
    u_known = u_gold != UNKNOWN_ID
    c_sum = F.cross_entropy(c_logits[c_known], c_gold[c_known], reduction="sum")
    u_sum = F.cross_entropy(u_logits[u_known], u_gold[u_known], reduction="sum")
    return LossParts(d_sum, ordered.sum(), c_sum, c_known.sum(), u_sum, u_known.sum())


def _uniform(shape: tuple[int, int], generator: torch.Generator | None) -> torch.Tensor:
    return torch.empty(shape).uniform_(-INIT_RANGE, INIT_RANGE, generator=generator)

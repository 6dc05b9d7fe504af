"""The AST-Probe module and its loss, on flat token batches (no padding anywhere).

A batch holds the token hidden states of several snippets back to back, (N, hidden). Consecutive
differences are taken over the whole flat array and the ones that straddle two snippets are
dropped by index. The pairwise d loss runs over an explicit list of the (i, j) pairs inside each
snippet, sum of L^2 over the batch, rather than a (B, L_max, L_max) block that one long snippet
would inflate for the whole batch.

`stacked_loss` is the training path: the same loss for a stack of S probes of one shape, each
reading its own token hidden states of the same snippets (one hidden state each, say), with
batched matrix products and the batch's index work done once for all S (see
`fitting.fit_many`). It projects the differences of all consecutive tokens, straddling ones
included, and ignores those by target, so that no (S, n, rank) tensor is gathered by index.
`ProbeModule.forward` with `loss_parts` is the plain single-probe form (prediction uses it;
tests compare the two).
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
INITS = ("uniform", "orthogonal")


class ProbeModule(nn.Module):
    """Projection B (hidden x rank) shared by all languages, label vectors V_c (rank x |C|) and
    V_u (rank x |U|) per language; no bias; uniform(-0.05, 0.05) init (the spec's), or with
    `init="orthogonal"` B with orthonormal columns (`torch.nn.init.orthogonal_`; the label
    vectors stay uniform), so that the orthogonality penalty starts at zero.

    t_i = h_i B, delta_i = t_i+1 - t_i, dhat_i = ||delta_i||^2, c logits = delta_i V_c,
    u logits = t_i V_u.
    """

    def __init__(
        self,
        hidden: int,
        rank: int,
        label_sizes: dict[str, tuple[int, int]],
        generator: torch.Generator | None = None,
        init: str = "uniform",
    ) -> None:
        """label_sizes: language -> (|C|, |U|); init: "uniform" or "orthogonal" (B only)."""
        super().__init__()
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.proj = nn.Parameter(_uniform((hidden, rank), generator))
        self.vectors_c = nn.ParameterDict(
            {lang: nn.Parameter(_uniform((rank, nc), generator)) for lang, (nc, _) in label_sizes.items()}
        )
        self.vectors_u = nn.ParameterDict(
            {lang: nn.Parameter(_uniform((rank, nu), generator)) for lang, (_, nu) in label_sizes.items()}
        )
        if init == "orthogonal":  # after the label vectors, which are thus the same under both inits
            with torch.no_grad():
                nn.init.orthogonal_(self.proj, generator=generator)

    @property
    def rank(self) -> int:
        return int(self.proj.shape[1])

    def forward(self, hidden_states: torch.Tensor, split_index: torch.Tensor, language: str):
        """Scores for a flat batch.

        Args:
            hidden_states: float (N, hidden), token hidden states of the batch's snippets back
                to back.
            split_index: long (M,), the flat index i of every pair (i, i + 1) inside one snippet.
            language: whose label vectors to use.

        Returns:
            dhat (M,), c logits (M, |C|), u logits (N, |U|).
        """
        t = hidden_states @ self.proj
        delta = t[split_index + 1] - t[split_index]
        dhat = (delta * delta).sum(dim=1)
        return dhat, delta @ self.vectors_c[language], t @ self.vectors_u[language]

    def orthogonality(self) -> torch.Tensor:
        """||B^T B - I||_F^2."""
        return orthogonality(self.proj)


def orthogonality(proj: torch.Tensor) -> torch.Tensor:
    """||B^T B - I||_F^2 of B ([S,] hidden, rank): a scalar, or (S,) for a stack of S."""
    gram = proj.mT @ proj
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    return ((gram - eye) ** 2).sum(dim=(-2, -1))


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
        return sum(
            s / c.clamp(min=1)
            for s, c in ((self.d_sum, self.d_count), (self.c_sum, self.c_count), (self.u_sum, self.u_count))
        )


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


IGNORE = -100  # F.cross_entropy's ignore_index


@dataclass(frozen=True)
class FlatTargets:
    """A flat batch of n tokens' gold, as `stacked_loss` reads it: indices into the n - 1
    differences of consecutive tokens (difference i is token i + 1 minus token i; those that
    straddle two snippets are never a target).

    Attributes:
        pair_a, pair_b: long (P,), every pair of differences (a, b) inside one snippet whose
            gold d_a > d_b (ties left out).
        c: long (n - 1,), gold c id of each difference; `IGNORE` for straddling ones and `<unk>`.
        u: long (n,), gold u id of each token; `IGNORE` for `<unk>`.
        c_count, u_count: long scalars, targets that count (not `IGNORE`).
    """

    pair_a: torch.Tensor
    pair_b: torch.Tensor
    c: torch.Tensor
    u: torch.Tensor
    c_count: torch.Tensor
    u_count: torch.Tensor


def stacked_loss(
    hidden_states: torch.Tensor,
    proj: torch.Tensor,
    vectors_c: torch.Tensor,
    vectors_u: torch.Tensor,
    targets: FlatTargets,
) -> LossParts:
    """The loss terms of S probes of one shape at once, each on its own hidden states of one
    batch.

    Args:
        hidden_states: float (S, n, hidden), each probe's token hidden states of the same flat
            batch.
        proj: (S, hidden, rank), the projections B.
        vectors_c, vectors_u: (S, rank, |C|) and (S, rank, |U|), the label vectors.
        targets: the batch's gold (shared by the S probes).

    Returns:
        `LossParts` whose sums are (S,), one per probe (counts are shared scalars): each probe's
        terms are those of `loss_parts` on `ProbeModule.forward`, up to float rounding.
    """
    # (h_i+1 - h_i) B rather than t_i+1 - t_i, and h (B V_u) rather than t V_u: the same
    # products, with no (S, n, rank) tensor to slice and pad back in the backward pass.
    diff = (hidden_states[:, 1:] - hidden_states[:, :-1]) @ proj
    dhat = diff.square().sum(dim=-1)
    pairs = dhat.index_select(1, targets.pair_a) - dhat.index_select(1, targets.pair_b)
    d_sum = F.relu(1.0 - pairs).sum(dim=1)
    d_count = torch.tensor(targets.pair_a.numel(), device=d_sum.device)
    c_sum = _cross_entropy_sums(diff @ vectors_c, targets.c)
    u_sum = _cross_entropy_sums(hidden_states @ (proj @ vectors_u), targets.u)
    return LossParts(d_sum, d_count, c_sum, targets.c_count, u_sum, targets.u_count)


def _cross_entropy_sums(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(S,) summed cross-entropy of logits (S, K, classes) against target (K,) (IGNORE: 0)."""
    s, k, classes = logits.shape
    per = F.cross_entropy(logits.reshape(s * k, classes), target.repeat(s), ignore_index=IGNORE, reduction="none")
    return per.view(s, k).sum(dim=1)


def _uniform(shape: tuple[int, int], generator: torch.Generator | None) -> torch.Tensor:
    return torch.empty(shape).uniform_(-INIT_RANGE, INIT_RANGE, generator=generator)

"""A structural probe's inputs: per-snippet token vectors, checked (`token_vectors`), their gold
from the token trees (`gold_targets`), and padded batches of both (`ProbeInputs.batch`).

Token vectors are a model's hidden states pooled onto the code tokens of each snippet's token
tree (`TokenTree.tokens`), one row per token, as AST-Probe's hidden-state cache holds them (the
mean of each token's subwords; `codeprobe.model.Extractor` with a `ModelInput` built from
`TokenTree.tokens` gives them, (L, n, hidden) per snippet). They are read batch by batch and
converted to float32 only then, so float16 memory maps stay on disk until a batch needs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from codeprobe.errors import InputError
from codeprobe.syntax import TokenTree, ast_distance

# What a distance probe is fitted to: "token_tree", path lengths in the token tree (Hewitt &
# Manning's target on a dependency tree); "ast", the leaf-to-leaf AST distance CAT-probing's
# `ast` switch uses (`codeprobe.syntax.ast_distance`: depth(a) + depth(b) - 2 depth(lca)).
TARGETS = ("token_tree", "ast")
KINDS = ("distance", "depth")
MIN_TOKENS = 2  # UUAS and NSpr need an edge; a lone token has no pair and no depth order


@dataclass(frozen=True, eq=False)
class TokenVectors:
    """Checked token vectors of m snippets.

    Attributes:
        arrays: per snippet an array (S, n_k, hidden) (a single hidden state as S = 1), as given
            (float16 memory maps included).
        lengths: int64 (m,), tokens per snippet.
        n_states: S, hidden states per snippet.
        hidden: the vectors' width.
    """

    arrays: tuple[np.ndarray, ...]
    lengths: np.ndarray
    n_states: int
    hidden: int

    def __len__(self) -> int:
        return len(self.arrays)


def token_vectors(X, *, stacked: bool) -> TokenVectors:
    """Check per-snippet token vectors.

    Args:
        X: a sequence of m arrays (numpy, memory maps, CPU tensors): (n_k, hidden) each, or with
            `stacked` (L, n_k, hidden) each (every hidden state of the snippet, as
            `SnippetResult.hidden_states`).
        stacked: whether each snippet carries L hidden states.

    Raises:
        InputError: no snippet; a snippet that is not a float array of the right number of
            dimensions; widths or numbers of hidden states that differ between snippets
            (ragged); a snippet with fewer than 2 tokens; values that are not finite. The
            message names the first snippet at fault by its index.
    """
    if isinstance(X, (str, bytes)) or not isinstance(X, (Sequence, np.ndarray)):
        raise InputError(f"X must be a sequence of per-snippet arrays, not {type(X).__name__}")
    if len(X) == 0:
        raise InputError("X holds no snippet")
    ndim = 3 if stacked else 2
    shape = "(L, n, hidden)" if stacked else "(n, hidden)"
    arrays, lengths = [], []
    for k, x in enumerate(X):
        a = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if a.ndim != ndim or not np.issubdtype(a.dtype, np.floating):
            raise InputError(f"snippet {k}: token vectors must be a float array {shape}, got {a.dtype} {a.shape}")
        a = a if stacked else a[None]
        if k and a.shape[::2] != arrays[0].shape[::2]:
            first = arrays[0]
            raise InputError(
                f"snippet {k} has {a.shape[0]} hidden states of width {a.shape[2]}, snippet 0 "
                f"{first.shape[0]} of width {first.shape[2]}: every snippet needs the same"
            )
        if a.shape[1] < MIN_TOKENS:
            raise InputError(f"snippet {k} has {a.shape[1]} tokens: a structural probe needs at least {MIN_TOKENS}")
        if not np.isfinite(a).all():
            raise InputError(f"snippet {k}: token vectors must be finite")
        arrays.append(a)
        lengths.append(a.shape[1])
    return TokenVectors(tuple(arrays), np.asarray(lengths, dtype=np.int64), arrays[0].shape[0], arrays[0].shape[2])


def check_trees(y, lengths: np.ndarray) -> tuple[TokenTree, ...]:
    """The gold trees `y`, one `TokenTree` per snippet of the given lengths.

    Raises:
        InputError: not a sequence of TokenTree, a number of trees other than the snippets', or
            a tree whose size is not its snippet's number of token vectors.
    """
    if isinstance(y, (str, bytes)) or not isinstance(y, Sequence):
        raise InputError(f"y must be a sequence of TokenTree (one per snippet), not {type(y).__name__}")
    if len(y) != lengths.size:
        raise InputError(f"{lengths.size} snippets of token vectors but {len(y)} gold trees")
    for k, (tree, n) in enumerate(zip(y, lengths.tolist())):
        if not isinstance(tree, TokenTree):
            raise InputError(f"gold tree {k} must be a TokenTree (SyntaxTree.token_tree()), not {type(tree).__name__}")
        if len(tree) != n:
            raise InputError(f"snippet {k}: {n} token vectors for a gold tree of {len(tree)} tokens")
    return tuple(y)


def gold_distance(tree: TokenTree, target: str) -> np.ndarray:
    """int32 (n, n): the distance probe's target on one snippet (see `TARGETS`)."""
    return tree.distance if target == "token_tree" else ast_distance(tree.tokens)


def gold_targets(trees: Sequence[TokenTree], kind: str, target: str | None) -> tuple[np.ndarray, ...]:
    """float32 per snippet: the `target` distances (n, n) of a distance probe, or the token-tree
    depths (n,) of a depth probe (target None)."""
    if kind == "depth":
        return tuple(t.depth.astype(np.float32) for t in trees)
    return tuple(gold_distance(t, target).astype(np.float32) for t in trees)


@dataclass(frozen=True)
class Batch:
    """Snippets padded to the longest of them.

    Attributes:
        h: float32 (S, b, n, hidden), token vectors of the S hidden states asked for; padding 0.
        gold: float32 (b, n, n) target distances or (b, n) depths; padding 0.
        mask: bool (b, n), real tokens.
        lengths: float32 (b,), tokens per snippet.
    """

    h: torch.Tensor
    gold: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor


@dataclass(frozen=True, eq=False)
class ProbeInputs:
    """Token vectors and their gold targets, as training and the validation loss read them."""

    vectors: TokenVectors
    gold: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return len(self.gold)

    def batch(self, ids: np.ndarray, states: np.ndarray, device: str) -> Batch:
        """Snippets `ids`, hidden states `states` (indices into S), padded, on `device`."""
        lengths = self.vectors.lengths[ids]
        b, n = ids.size, int(lengths.max())
        h = torch.zeros((states.size, b, n, self.vectors.hidden), dtype=torch.float32)
        gold = torch.zeros((b, n, n) if self.gold[0].ndim == 2 else (b, n), dtype=torch.float32)
        all_states = states.size == self.vectors.n_states
        for row, k in enumerate(ids.tolist()):
            a = self.vectors.arrays[k]
            m = int(lengths[row])
            h[:, row, :m] = torch.from_numpy(np.asarray(a if all_states else a[states], dtype=np.float32))
            g = torch.from_numpy(self.gold[k])
            if g.ndim == 2:
                gold[row, :m, :m] = g
            else:
                gold[row, :m] = g
        mask = torch.arange(n)[None, :] < torch.from_numpy(lengths)[:, None]
        as_device = lambda t: t.to(device)  # noqa: E731
        return Batch(as_device(h), as_device(gold), as_device(mask), as_device(torch.from_numpy(lengths).float()))

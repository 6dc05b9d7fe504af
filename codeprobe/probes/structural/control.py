"""The control tree: a structural probe's control task (Hewitt & Liang, "Designing and
Interpreting Probes with Control Tasks", EMNLP 2019, arXiv:1909.03368).

A control task keeps a task's output space but makes each output a function of the token type
alone, so a probe can only do well on it by memorising types. Hewitt & Liang's control for
dependency edges gives each word type one of three attachment behaviours; here, as the issue
asks of a tree the structural probe can fit, each token *type* (its text) gets one of:

- "first": attach to the snippet's first token;
- "last": attach to the snippet's last token;
- "left": attach to its left neighbour.

The behaviour of a type is drawn uniformly and fixed by the seed alone (a hash of the seed and
the text: the same type has the same behaviour in every snippet, split and process, whatever
order the types are met in).

Two positions need a convention, since a behaviour there would point at the token itself or
close a cycle (the last token "left" of a token that attaches "last"):
- the first token is the root (heads -1), whatever its type, as in the gold token tree;
- the last token attaches to the first, whatever its type.
Every other token's head is then the first token, a token to its left, or the last token, whose
head is the first: every path climbs to token 0, so the heads always form a tree with one root.
Unlike the gold token tree, heads may follow their dependents (the last token), so the token
order is not a preorder of the tree; `ControlTree.distance` computes path lengths for any tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from codeprobe.syntax import TokenTree

CONTROL_RULE = "control"
BEHAVIOURS = ("first", "last", "left")


def behaviours(texts: Iterable[str], seed: int) -> np.ndarray:
    """int8 per token: the index into `BEHAVIOURS` of each token type's attachment behaviour,
    fixed by `seed` (uniform over the three; module docstring)."""
    memo: dict[str, int] = {}
    out = []
    for text in texts:
        if text not in memo:
            digest = hashlib.blake2b(f"{seed}\0{text}".encode(), digest_size=8).digest()
            memo[text] = int.from_bytes(digest, "little") % len(BEHAVIOURS)
        out.append(memo[text])
    return np.asarray(out, dtype=np.int8)


def control_heads(kinds: np.ndarray) -> np.ndarray:
    """int64 (n,): the control tree's heads from each token's behaviour (`behaviours`), with the
    conventions of the module docstring (token 0 the root, the last token under it)."""
    n = kinds.size
    index = np.arange(n, dtype=np.int64)
    heads = np.select([kinds == 0, kinds == 1], [np.zeros(n, np.int64), np.full(n, n - 1)], default=index - 1)
    if n:
        heads[0] = -1
    if n > 1:
        heads[n - 1] = 0
    return heads


@dataclass(frozen=True, eq=False)
class ControlTree(TokenTree):
    """A control tree over a snippet's tokens (`control_tree`): a `TokenTree` whose `rule` is
    `CONTROL_RULE`, scored and fitted like the gold one.

    Attributes: as `TokenTree`'s (heads, depth over the same tokens).
    """

    @cached_property
    def distance(self) -> np.ndarray:
        """int32 (n, n): path lengths in this tree, depth(i) + depth(j) - 2 depth(lca(i, j)),
        where the common ancestors-or-self of i and j are the path from the root to their lca
        (its depth + 1 of them); read-only."""
        n = len(self)
        up = np.where(self.heads < 0, np.arange(n), self.heads)
        ancestors = np.eye(n, dtype=np.float32)  # [i, a]: a is i or above it
        at = np.arange(n)
        for _ in range(int(self.depth.max(initial=0))):
            at = up[at]
            ancestors[np.arange(n), at] = 1.0
        common = ancestors @ ancestors.T  # exact: counts below 2**24
        d = self.depth.astype(np.int64)
        out = (d[:, None] + d[None, :] - 2 * (common.astype(np.int64) - 1)).astype(np.int32)
        out.setflags(write=False)
        return out


def control_tree(tree: TokenTree, seed: int) -> ControlTree:
    """The control tree over the tokens of `tree` (its texts as the types), by `seed`."""
    heads = control_heads(behaviours(tree.tokens.texts, seed))
    heads.setflags(write=False)
    depth = _depths(heads)
    depth.setflags(write=False)
    return ControlTree(tokens=tree.tokens, heads=heads, depth=depth, rule=CONTROL_RULE)


def control_trees(trees: Sequence[TokenTree], seed: int) -> tuple[ControlTree, ...]:
    """`control_tree` of each tree, the behaviours of the types shared across them."""
    return tuple(control_tree(t, seed) for t in trees)


def _depths(heads: np.ndarray) -> np.ndarray:
    """int32 (n,): each token's distance to the root, by pointer doubling (the root points at
    itself, at distance 0)."""
    n = heads.size
    up = np.where(heads < 0, np.arange(n), heads)
    depth = (heads >= 0).astype(np.int64)
    for _ in range(int(np.ceil(np.log2(max(n, 2)))) + 1):
        depth = depth + depth[up]
        up = up[up]
    return depth.astype(np.int32)

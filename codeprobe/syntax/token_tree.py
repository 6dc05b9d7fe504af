"""The token tree: a tree whose nodes are the code tokens, converted from the AST by a head rule.
It is the gold tree of structural probes (Hewitt & Manning, NAACL 2019, N19-1419): UUAS scores
its undirected edges, DSpr its path lengths, NSpr and root accuracy its depths.

The head rule, `HEAD_RULE = "first-token"`: every AST node is headed by its first code token
(CodeSyntax's head of a span, arXiv:2210.14473, and the head token of
`codeprobe.syntax.relations`), and inside a node the head of every child but the first
attaches to the node's head. Token t's head is therefore the first token of the parent of the
highest node whose first token is t (t's maximal projection); the snippet's first token is the
root. Nodes that cover no token (comments, zero-width nodes, anything inside a collapsed
string) play no part. The rule is defined on any tree, ERROR nodes included, and needs nothing
per grammar: the registry has no override (see docs/token-tree.md).

What follows from it:
- every head precedes its dependents (heads[t] < t), so there is one root, token 0, and no cycle;
- each token's subtree is the tokens of its maximal projection, a contiguous run starting at
  it: the token order is a preorder of the tree, and the tree is projective;
- a token's depth is the number of maximal projections above its own on its AST path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from codeprobe.syntax.distances import token_tree_distance
from codeprobe.syntax.tokens import CodeTokens

HEAD_RULE = "first-token"


@dataclass(frozen=True, eq=False)
class TokenTree:
    """The token tree of one snippet's code tokens (the rule is in the module docstring).

    Attributes:
        tokens: the code tokens it spans; indices below are into them.
        heads: int64 (n,), each token's head token, -1 at the root (token 0).
        depth: int32 (n,), each token's distance to the root in this tree (root = 0).
        rule: the head rule, `HEAD_RULE`.
    """

    tokens: CodeTokens
    heads: np.ndarray
    depth: np.ndarray
    rule: str = HEAD_RULE

    def __len__(self) -> int:
        return int(self.heads.shape[0])

    @property
    def edges(self) -> np.ndarray:
        """int64 (n - 1, 2): the (head, dependent) pairs, in dependent order."""
        dependent = np.arange(1, len(self), dtype=np.int64)
        return np.stack((self.heads[1:], dependent), axis=1)

    @cached_property
    def distance(self) -> np.ndarray:
        """int32 (n, n): path lengths between tokens in this tree (the structural distance
        probe's target); read-only.

        Raises:
            TooLargeError: more than `codeprobe.syntax.distances.MAX_TOKENS` tokens.
        """
        out = token_tree_distance(self.heads, self.depth)
        out.setflags(write=False)
        return out


def token_tree(tokens: CodeTokens) -> TokenTree:
    """The token tree over `tokens` by the first-token rule (vectorised over the nodes).

    Args:
        tokens: the code tokens of a parsed snippet (`parse(code, lang).tokens(...)`).

    Returns:
        TokenTree with read-only arrays; empty for a snippet without tokens.
    """
    tree = tokens.tree
    lo, hi = tokens.spans
    parent = tree.parent.astype(np.int64)
    # A node tops its first token's maximal projection: it covers tokens and its parent starts
    # with another token (or it is the root). One such node per token.
    top = hi > lo
    top[1:] &= lo[parent[1:]] != lo[1:]
    heads = np.full(len(tokens), -1, dtype=np.int64)
    below_root = np.flatnonzero(top[1:]) + 1
    heads[lo[below_root]] = lo[parent[below_root]]
    # Maximal projections on each node's path from the root (+1 over each top node's subtree, a
    # running sum); a token's depth is that count at its node, less its own.
    n = tree.n_nodes
    tops = np.flatnonzero(top)
    cover = np.bincount(tops, minlength=n + 1) - np.bincount(tree.subtree_end[tops], minlength=n + 1)
    depth = (np.cumsum(cover[:n])[tokens.node] - 1).astype(np.int32)
    heads.setflags(write=False)
    depth.setflags(write=False)
    return TokenTree(tokens=tokens, heads=heads, depth=depth)

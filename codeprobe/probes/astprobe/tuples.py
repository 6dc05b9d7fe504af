"""AST to (d, c, u): AST-Probe's binarized tree, read off as one tuple per snippet.

The tree is tree-sitter's concrete tree (anonymous children included) minus comments, with
every `string` / `*string_literal*` node collapsed into one terminal; tokens are its terminals in
source order (`SyntaxTree.tokens(collapse_strings=True)`). The binarization (spec, top-down):

- a node with one non-terminal child merges with it, label `parent<sep>child` (chains repeat);
- a node with one terminal child becomes that leaf, its label the leaf's unary label `u`;
- a node with k > 2 children branches to the right through helper nodes labelled `<empty>`.

No binary tree is built. Nodes that cover no token (comments, zero-width leaves, the insides of
collapsed strings) are pruned, and each edge of the pruned tree gets the number of binary edges
it turns into: 0 inside a merged chain, and for the j-th of k children (0-based) j + 1, or
j = k - 1 for the last one. With P(v) the sum of these costs from the root, the binary subtree
hanging at a node's position reaches its deepest token t at height max P(t) - P(node); so
d_i = max P over the tokens right of the split - P(lca) - (helper nodes above the split), one
range maximum per token pair.

Two switches follow the reference code (arXiv 2206.11719) rather than the paper's text:
`drop_line_continuations` leaves Python's `line_continuation` leaves (backslash-newline) out of
the tokens, and `code_tuple(..., remove_docstrings=True)` first rewrites the code as the
reference's preprocessing does (see `preprocess.remove_docstrings`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codeprobe.errors import EmptyCodeError
from codeprobe.probes.astprobe._rmq import max_table, range_max
from codeprobe.probes.astprobe.preprocess import remove_docstrings as strip_docstrings
from codeprobe.syntax import CodeTokens, SyntaxTree, parse

EMPTY = "<empty>"
SEP = "<sep>"
LINE_CONTINUATION = "line_continuation"  # tree-sitter-python's leaf for backslash-newline


@dataclass(frozen=True, eq=False)
class ASTTuple:
    """The (d, c, u) tuple of one snippet with n code tokens.

    Attributes:
        d: int32 (n - 1,), height of lca(w_i, w_i+1) in the binary tree (leaves have height 0).
        c: (n - 1,) labels of those lcas: a type, a merged chain `a<sep>b`, or `<empty>`.
        u: (n,) unary chain directly above each token, or `<empty>`.
        tokens: the n code tokens (string-collapsed, comments dropped).
    """

    d: np.ndarray
    c: tuple[str, ...]
    u: tuple[str, ...]
    tokens: CodeTokens

    @property
    def n_tokens(self) -> int:
        return len(self.u)


def code_tuple(
    code: str, language: str, *, remove_docstrings: bool = False, drop_line_continuations: bool = False
) -> ASTTuple:
    """Parse `code` and extract its tuple (see `tree_tuple`).

    With `remove_docstrings`, the code is first rewritten as the reference does it
    (`preprocess.remove_docstrings`); the tuple's tokens then index the rewritten text
    (`tokens.tree.code`). Raises InputError if Python's tokenizer rejects the code.
    """
    if remove_docstrings:
        code = strip_docstrings(code, language)
    return tree_tuple(parse(code, language), drop_line_continuations=drop_line_continuations)


def tuple_tokens(tree: SyntaxTree, *, drop_line_continuations: bool = False) -> CodeTokens:
    """The tokens a tuple is made of: string-collapsed, comments dropped, and with
    `drop_line_continuations` no `line_continuation` leaf."""
    tokens = tree.tokens(collapse_strings=True)
    if not drop_line_continuations or LINE_CONTINUATION not in tree.type_names:
        return tokens
    keep = ~tree.node_types_matching(lambda name: name == LINE_CONTINUATION)[tokens.node]
    return CodeTokens(tree=tree, node=tokens.node[keep], collapse_strings=True)


def tree_tuple(tree: SyntaxTree, *, drop_line_continuations: bool = False) -> ASTTuple:
    """The (d, c, u) tuple of a parsed snippet.

    Args:
        tree: the parsed snippet.
        drop_line_continuations: leave `line_continuation` leaves out, as the reference's
            preprocessing does (its tokenizer-based rewrite joins continued lines); a node left
            without tokens is pruned like any other.

    Raises:
        EmptyCodeError: the tree has no code token (only comments, say).
    """
    tokens = tuple_tokens(tree, drop_line_continuations=drop_line_continuations)
    n = len(tokens)
    if n == 0:
        raise EmptyCodeError("the code has no tokens once comments are dropped")
    n_nodes = tree.n_nodes
    parent = tree.parent.astype(np.int64)
    end = tree.subtree_end
    tok_nodes = tokens.node.astype(np.int64)

    is_token = np.zeros(n_nodes, dtype=bool)
    is_token[tok_nodes] = True
    before = np.concatenate(([0], np.cumsum(is_token)))  # tokens preceding each preorder index
    first_tok = before[:n_nodes]
    last_tok = before[end] - 1
    # Pruned tree: nodes covering a token, minus the insides of collapsed strings.
    inside = np.zeros(n_nodes + 1, dtype=np.int64)
    np.add.at(inside, tok_nodes + 1, 1)
    np.add.at(inside, end[tok_nodes], -1)
    kept = (last_tok >= first_tok) & (np.cumsum(inside[:n_nodes]) == 0)
    kept_nodes = np.flatnonzero(kept)
    child_nodes = kept_nodes[kept_nodes > 0]
    n_kids = np.bincount(parent[child_nodes], minlength=n_nodes)

    # Rank of each kept child among its kept siblings (children come in preorder).
    by_parent = child_nodes[np.argsort(parent[child_nodes], kind="stable")]
    group_start = np.flatnonzero(np.r_[True, parent[by_parent[1:]] != parent[by_parent[:-1]]])
    sizes = np.diff(np.r_[group_start, by_parent.size])
    rank = np.zeros(n_nodes, dtype=np.int64)
    rank[by_parent] = np.arange(by_parent.size) - np.repeat(group_start, sizes)
    prev_sibling = np.full(n_nodes, -1, dtype=np.int64)
    has_prev = rank[by_parent] > 0
    prev_sibling[by_parent[1:][has_prev[1:]]] = by_parent[:-1][has_prev[1:]]

    # Binary edges per pruned edge, summed from the root over subtree ranges.
    k = n_kids[parent[child_nodes]]
    r = rank[child_nodes]
    cost = np.where(k == 1, 0, np.where(r < k - 1, r + 1, r))
    diff = np.zeros(n_nodes + 1, dtype=np.int64)
    np.add.at(diff, child_nodes, cost)
    np.add.at(diff, end[child_nodes], -cost)
    path = np.cumsum(diff[:n_nodes])
    table = max_table(path[tok_nodes])

    # For each token pair: the lca's child holding w_i+1 (one step below the lca), by climbing.
    left = tok_nodes[:-1]
    right_child = tok_nodes[1:].copy()
    active = np.flatnonzero(parent[right_child] > left)
    while active.size:
        right_child[active] = parent[right_child[active]]
        active = active[parent[right_child[active]] > left[active]]
    lca = parent[right_child]
    split = rank[right_child] - 1  # helper nodes between the lca and the split
    left_child = prev_sibling[right_child]
    d = range_max(table, first_tok[left_child], last_tok[lca]) - path[lca] - split

    labels = _chain_labels(tree, kept_nodes, n_kids, is_token)
    c = tuple(labels[b] if a == 0 else EMPTY for b, a in zip(lca.tolist(), split.tolist()))
    u = tuple(labels.get(t, EMPTY) for t in tok_nodes.tolist())
    return ASTTuple(d=d.astype(np.int32), c=c, u=u, tokens=tokens)


def _chain_labels(tree: SyntaxTree, kept_nodes: np.ndarray, n_kids: np.ndarray, is_token: np.ndarray) -> dict[int, str]:
    """Label of every merged chain, keyed by its bottom node.

    A chain is a maximal run of single-child non-terminals plus the node it ends on. Ending on a
    branching node, the label joins all their types; ending on a token, it joins the types
    above the token (the token's unary label) and is absent when nothing is above it.
    """
    parent = tree.parent.astype(np.int64)
    single = np.zeros(tree.n_nodes, dtype=bool)
    single[kept_nodes] = (n_kids[kept_nodes] == 1) & ~is_token[kept_nodes]
    down = np.arange(tree.n_nodes, dtype=np.int64)
    below = kept_nodes[(kept_nodes > 0)]
    below = below[single[parent[below]]]
    down[parent[below]] = below
    # Pointer jumping down the single-child links: O(log chain length) passes.
    while True:
        nxt = down[down]
        if np.array_equal(nxt, down):
            break
        down = nxt
    bottom = down[kept_nodes]
    order = np.argsort(bottom, kind="stable")
    members = kept_nodes[order]
    starts = np.flatnonzero(np.r_[True, bottom[order][1:] != bottom[order][:-1]])
    stops = np.r_[starts[1:], members.size]
    names = tree.type_names
    type_ids = tree.type_ids
    labels: dict[int, str] = {}
    for lo, hi in zip(starts.tolist(), stops.tolist()):
        b = int(members[hi - 1])  # the bottom is the deepest, so the last in preorder
        if is_token[b]:
            hi -= 1
            if hi == lo:
                continue
        labels[b] = SEP.join(names[t] for t in type_ids[members[lo:hi]])
    return labels

"""Pairwise distances between code tokens: plain AST distance and CAT-probing's U-AST distance.

Both are computed for tokens only, vectorised, instead of all-pairs shortest paths over every
node (the reference's networkx approach):

- AST distance uses depths and lowest common ancestors. Tokens are in preorder, and for nodes in
  preorder depth(lca(t_i, t_j)) = min over i <= k < j of depth(lca(t_k, t_k+1)), so one
  sparse-table range-minimum over the n - 1 consecutive LCA depths gives every pair.
- U-AST distance is a shortest path in the tree plus consecutive-token and same-name
  identifier edges. All of those edges join tokens, so every shortest path between tokens runs
  through tree paths between tokens: we compress the tree to the tokens and their pairwise
  LCAs (the "virtual tree", edges weighted by depth difference), add the extra edges, and run
  Dijkstra from every token with scipy's C implementation.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from codeprobe.errors import TooLargeError
from codeprobe.syntax.tokens import CodeTokens

MAX_TOKENS = 16_384  # an (n, n) int32 matrix of this size is 1 GiB
_SOURCE_CHUNK = 256  # Dijkstra sources per call: bounds the float64 scratch matrix


def consecutive_lca(tokens: CodeTokens) -> np.ndarray:
    """Node index of lca(t_k, t_k+1) for k = 0..n-2, int64 (n - 1,).

    For u < v in preorder, lca(u, v) is the first ancestor of v whose index is <= u.
    """
    parent = tokens.tree.parent
    u = tokens.node[:-1].astype(np.int64)
    cur = tokens.node[1:].astype(np.int64).copy()
    active = np.flatnonzero(cur > u)
    while active.size:
        cur[active] = parent[cur[active]]
        active = active[cur[active] > u[active]]
    return cur


def lca_depth_matrix(tokens: CodeTokens) -> np.ndarray:
    """depth(lca(t_i, t_j)) for all token pairs, int32 (n, n); the diagonal is depth(t_i)."""
    n = _checked_size(tokens)
    depth = tokens.tree.depth
    out = np.empty((n, n), dtype=np.int32)
    if n == 0:
        return out
    m = depth[consecutive_lca(tokens)].astype(np.int32)  # (n - 1,)
    # Sparse table: table[l][k] = min(m[k : k + 2**l]).
    table = [m]
    while 2 ** len(table) <= m.size:
        prev, half = table[-1], 2 ** (len(table) - 1)
        table.append(np.minimum(prev[:-half], prev[half:]))
    i, j = np.triu_indices(n, k=1)
    length = j - i  # the range m[i : j] has j - i entries
    level = np.floor(np.log2(length)).astype(np.int64)
    width = np.left_shift(1, level)
    stacked = _pad_stack(table)
    upper = np.minimum(stacked[level, i], stacked[level, j - width])
    out[i, j] = upper
    out[j, i] = upper
    np.fill_diagonal(out, depth[tokens.node])
    return out


def ast_distance(tokens: CodeTokens) -> np.ndarray:
    """Tree distance depth(a) + depth(b) - 2 depth(lca(a, b)) between tokens, int32 (n, n)."""
    d = tokens.depth.astype(np.int32)
    return d[:, None] + d[None, :] - 2 * lca_depth_matrix(tokens)


def uast_edges(tokens: CodeTokens) -> np.ndarray:
    """The U-AST's extra edges as token-index pairs, int64 (m, 2).

    Each token is joined to the next one, and each `identifier` token to the previous
    `identifier` token with the same text (CAT-probing's crude def-use chain; other identifier
    kinds such as `property_identifier` get no such edge).
    """
    n = len(tokens)
    pairs = [np.stack([np.arange(n - 1), np.arange(1, n)], axis=1)] if n > 1 else []
    last_seen: dict[str, int] = {}
    same_name = []
    for k, (kind, text) in enumerate(zip(tokens.types, tokens.texts)):
        if kind == "identifier":
            if text in last_seen:
                same_name.append((last_seen[text], k))
            last_seen[text] = k
    if same_name:
        pairs.append(np.asarray(same_name, dtype=np.int64))
    if not pairs:
        return np.zeros((0, 2), np.int64)
    # Two adjacent same-name identifiers would otherwise be joined twice.
    return np.unique(np.concatenate(pairs).astype(np.int64), axis=0)


def uast_distance(tokens: CodeTokens) -> np.ndarray:
    """Shortest-path hop counts between tokens in the U-AST, int32 (n, n).

    The U-AST is the undirected tree over all nodes plus the edges of `uast_edges`.
    """
    n = _checked_size(tokens)
    if n == 0:
        return np.zeros((0, 0), dtype=np.int32)
    nodes, vparent, weight = _virtual_tree(tokens)
    index_of = {int(v): k for k, v in enumerate(nodes)}
    token_vertex = np.array([index_of[int(t)] for t in tokens.node], dtype=np.int64)

    child = np.flatnonzero(vparent >= 0)
    extra = token_vertex[uast_edges(tokens)]
    rows = np.concatenate([child, extra[:, 0]])
    cols = np.concatenate([vparent[child], extra[:, 1]])
    weights = np.concatenate([weight[child], np.ones(len(extra))]).astype(np.float64)
    # Extra edges join tokens, tree edges join a token or LCA to a strict ancestor: no edge
    # appears twice (uast_edges is deduplicated), so coo's summing of duplicates never fires.
    graph = coo_matrix((weights, (rows, cols)), shape=(nodes.size, nodes.size)).tocsr()

    out = np.empty((n, n), dtype=np.int32)
    for lo in range(0, n, _SOURCE_CHUNK):
        src = token_vertex[lo : lo + _SOURCE_CHUNK]
        dist = dijkstra(graph, directed=False, indices=src)
        out[lo : lo + src.size] = dist[:, token_vertex].astype(np.int32)
    return out


def _virtual_tree(tokens: CodeTokens):
    """Compress the tree to the tokens and the LCAs of consecutive tokens.

    Returns:
        nodes: int64 (V,), tree node indices in preorder (tokens and their LCAs);
        vparent: int64 (V,), index into `nodes` of each vertex's parent, -1 for the top;
        weight: int64 (V,), depth difference to that parent (= tree distance).
    """
    tree = tokens.tree
    nodes = np.unique(np.concatenate([tokens.node, consecutive_lca(tokens)]))
    depth = tree.depth[nodes].astype(np.int64)
    end = tree.subtree_end[nodes]
    vparent = np.full(nodes.size, -1, dtype=np.int64)
    # In preorder, a vertex's parent is the nearest earlier vertex whose subtree contains it:
    # one pass with a stack of open subtrees.
    stack: list[int] = []
    for k in range(nodes.size):
        v = nodes[k]
        while stack and end[stack[-1]] <= v:
            stack.pop()
        if stack:
            vparent[k] = stack[-1]
        stack.append(k)
    weight = np.where(vparent >= 0, depth - depth[np.maximum(vparent, 0)], 0)
    return nodes, vparent, weight


def _pad_stack(table: list[np.ndarray]) -> np.ndarray:
    width = table[0].size
    stacked = np.zeros((len(table), width), dtype=table[0].dtype)
    for level, row in enumerate(table):
        stacked[level, : row.size] = row
    return stacked


def _checked_size(tokens: CodeTokens) -> int:
    n = len(tokens)
    if n > MAX_TOKENS:
        raise TooLargeError(
            f"{n} tokens: an n x n distance matrix over more than {MAX_TOKENS} tokens "
            "would not fit in memory; probe smaller snippets"
        )
    return n

"""Pairwise distances between code tokens: plain AST distance, CAT-probing's U-AST distance and
the token tree's path length (`codeprobe.syntax.token_tree`).

All are computed for tokens only, vectorised, instead of all-pairs shortest paths over every
node (the reference's networkx approach):

- AST distance uses depths and lowest common ancestors. Tokens are in preorder, and for nodes in
  preorder depth(lca(t_i, t_j)) = min over i <= k < j of depth(lca(t_k, t_k+1)): the n - 1
  consecutive LCAs (each found by climbing from the later token) give every pair by running
  minima.
- U-AST distance is a shortest path in the tree plus consecutive-token and same-name
  identifier edges. It is a breadth-first search from every token over the whole tree plus
  those edges: a search stops as soon as it has reached every token. (scipy's Dijkstra gives
  the same numbers but spends ~5 us per source in heap bookkeeping, which dominated the cost on
  real snippets.)
- Token-tree distance is AST distance's running minima over the token tree itself, whose nodes
  (the tokens) are in preorder too.

The loops that numpy cannot express without O(n^2)-sized temporaries or one small call per
tree level (the climbs, running minima, breadth-first search) are compiled with numba.
"""

from __future__ import annotations

import numba
import numpy as np

from codeprobe.errors import InputError, TooLargeError
from codeprobe.syntax.languages import type_table
from codeprobe.syntax.tokens import CodeTokens

MAX_TOKENS = 16_384  # an (n, n) int32 matrix of this size is 1 GiB


def consecutive_lca(tokens: CodeTokens) -> np.ndarray:
    """Node index of lca(t_k, t_k+1) for k = 0..n-2, int64 (n - 1,).

    For u < v in preorder, lca(u, v) is the first ancestor of v whose index is <= u.
    """
    if len(tokens) < 2:
        return np.zeros(0, dtype=np.int64)
    return _consecutive_lca(tokens.tree.parent, tokens.node.astype(np.int64))


@numba.njit(cache=True, nogil=True)
def _consecutive_lca(parent, nodes):  # pragma: no cover - compiled
    out = np.empty(nodes.size - 1, dtype=np.int64)
    for k in range(nodes.size - 1):
        v = nodes[k + 1]
        while v > nodes[k]:
            v = parent[v]
        out[k] = v
    return out


def ast_distance(tokens: CodeTokens, among: np.ndarray | None = None) -> np.ndarray:
    """Tree distance depth(a) + depth(b) - 2 depth(lca(a, b)) between tokens, int32 (n, n).

    among: increasing token indices (k,): the distances between those tokens only, int32
        (k, k), equal to rows and columns `among` of the full matrix (CAT-probing needs only
        the tokens the model read, often a short prefix of a long file).

    Raises:
        TooLargeError: more than `MAX_TOKENS` tokens to measure between.
        InputError: `among` not increasing or out of range.
    """
    idx = _among(tokens, among)
    if idx.size == 0:
        return np.zeros((0, 0), dtype=np.int32)
    between = tokens.tree.depth[consecutive_lca(tokens)]  # (n - 1,) int32
    if among is not None:
        # depth(lca) of consecutive chosen tokens: the minimum over the gap between them.
        between = np.minimum.reduceat(np.append(between, between.dtype.type(0)), idx)[:-1]
    return _ast_from_running_min(between, tokens.depth[idx])


@numba.njit(cache=True, nogil=True)
def _ast_from_running_min(between, depth):  # pragma: no cover - compiled
    """out[i, j] = depth[i] + depth[j] - 2 min(between[i:j]) for i < j; symmetric, zero diagonal."""
    n = depth.size
    out = np.empty((n, n), dtype=np.int32)
    for i in range(n):
        out[i, i] = 0
        lca_depth = depth[i]
        for j in range(i + 1, n):
            lca_depth = min(lca_depth, between[j - 1])
            out[i, j] = depth[i] + depth[j] - 2 * lca_depth
            out[j, i] = out[i, j]
    return out


def token_tree_distance(heads: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Path lengths between the tokens of a token tree (`codeprobe.syntax.token_tree`), int32
    (n, n): symmetric, zero diagonal.

    The tokens are a preorder of their tree (every head precedes its dependents and each
    token's subtree is a contiguous run starting at it), so the running minima of
    `ast_distance` apply with the tokens as the tree's nodes.

    Args:
        heads: int (n,), each token's head, -1 at the root (token 0).
        depth: int32 (n,), each token's distance to the root.

    Raises:
        TooLargeError: more than `MAX_TOKENS` tokens.
    """
    n = int(heads.shape[0])
    _check_size(n)
    if n == 0:
        return np.zeros((0, 0), dtype=np.int32)
    between = depth[_consecutive_lca(np.asarray(heads, dtype=np.int64), np.arange(n, dtype=np.int64))]
    return _ast_from_running_min(between, depth)


def uast_edges(tokens: CodeTokens) -> np.ndarray:
    """The U-AST's extra edges as token-index pairs (i < j), int64 (m, 2), each listed once.

    Each token is joined to the next one, and each identifier token to the previous identifier
    token with the same text (CAT-probing's crude def-use chain, arXiv:2210.04633). Identifier
    types are the grammar registry's `identifiers` (`identifier` in most grammars; other kinds
    such as `property_identifier` get no such edge).
    """
    n = len(tokens)
    pairs = [(k, k + 1) for k in range(n - 1)]
    tree = tokens.tree
    is_identifier = type_table(tree.language).identifier[tree.type_ids[tokens.node]]
    if is_identifier.any():
        positions = np.flatnonzero(is_identifier).tolist()
        nodes = tokens.node[is_identifier]
        source = tree.source
        last_seen: dict[bytes, int] = {}
        for k, start, end in zip(positions, tree.start_byte[nodes].tolist(), tree.end_byte[nodes].tolist()):
            name = source[start:end]
            previous = last_seen.get(name)
            if previous is not None and previous != k - 1:  # k - 1 is joined already
                pairs.append((previous, k))
            last_seen[name] = k
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def uast_distance(tokens: CodeTokens, among: np.ndarray | None = None) -> np.ndarray:
    """Shortest-path hop counts between tokens in the U-AST, int32 (n, n).

    The U-AST is the undirected tree over all nodes plus the edges of `uast_edges`.

    among: increasing token indices (k,): the distances between those tokens only, int32
        (k, k), equal to rows and columns `among` of the full matrix (paths still run through
        the whole U-AST); k searches instead of n.

    Raises:
        TooLargeError: more than `MAX_TOKENS` tokens to measure between.
        InputError: `among` not increasing or out of range.
    """
    idx = _among(tokens, among)
    if idx.size == 0:
        return np.zeros((0, 0), dtype=np.int32)
    edges = tokens.node[uast_edges(tokens)].astype(np.int64)
    return _bfs_between(tokens.tree.parent, edges, tokens.node[idx].astype(np.int64))


@numba.njit(cache=True, nogil=True)
def _bfs_between(parent, edges, targets):  # pragma: no cover - compiled
    """Unweighted BFS distances between all `targets` in a tree plus extra edges.

    Args:
        parent: int32 (V,), the tree (-1 at the root).
        edges: int64 (m, 2), extra undirected edges between vertices.
        targets: int64 (n,), the vertices to measure between.
    Returns:
        int32 (n, n) hop counts.
    """
    n_vertices = parent.size
    # CSR adjacency of tree + extra edges, both directions.
    degree = np.zeros(n_vertices + 1, dtype=np.int64)
    for v in range(1, n_vertices):
        degree[parent[v] + 1] += 1
        degree[v + 1] += 1
    for e in range(edges.shape[0]):
        degree[edges[e, 0] + 1] += 1
        degree[edges[e, 1] + 1] += 1
    indptr = np.cumsum(degree)
    fill = indptr[:-1].copy()
    indices = np.empty(indptr[-1], dtype=np.int64)
    for v in range(1, n_vertices):
        p = parent[v]
        indices[fill[p]] = v
        fill[p] += 1
        indices[fill[v]] = p
        fill[v] += 1
    for e in range(edges.shape[0]):
        a, b = edges[e, 0], edges[e, 1]
        indices[fill[a]] = b
        fill[a] += 1
        indices[fill[b]] = a
        fill[b] += 1

    n = targets.size
    out = np.empty((n, n), dtype=np.int32)
    target_of = np.full(n_vertices, -1, dtype=np.int64)
    for k in range(n):
        target_of[targets[k]] = k
    dist = np.full(n_vertices, -1, dtype=np.int32)
    queue = np.empty(n_vertices, dtype=np.int64)
    for s in range(n):
        dist[:] = -1
        queue[0] = targets[s]
        dist[targets[s]] = 0
        head, tail, found = 0, 1, 0
        # Distances are symmetric: row s only needs targets s..n-1 (the rest are filled from
        # earlier rows), and the search stops once it has reached them all.
        while head < tail and found < n - s:
            v = queue[head]
            head += 1
            k = target_of[v]
            if k >= s:
                out[s, k] = dist[v]
                out[k, s] = dist[v]
                found += 1
            for e in range(indptr[v], indptr[v + 1]):
                u = indices[e]
                if dist[u] < 0:
                    dist[u] = dist[v] + 1
                    queue[tail] = u
                    tail += 1
    return out


def _among(tokens: CodeTokens, among: np.ndarray | None) -> np.ndarray:
    """The token indices to measure between (all by default), checked."""
    n = len(tokens)
    idx = np.arange(n) if among is None else np.asarray(among, dtype=np.int64)
    if idx.ndim != 1 or (idx.size and (idx[0] < 0 or idx[-1] >= n or (np.diff(idx) <= 0).any())):
        raise InputError(f"among must be increasing token indices below {n}")
    _check_size(idx.size)
    return idx


def _check_size(n: int) -> None:
    if n > MAX_TOKENS:
        raise TooLargeError(
            f"{n} tokens: an n x n distance matrix over more than {MAX_TOKENS} tokens "
            "would not fit in memory; probe smaller snippets"
        )

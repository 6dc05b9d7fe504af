"""Synthetic structural-probe problems (import from here): token trees of small random Python
expressions, and token vectors whose squared distances are exactly the trees' path lengths under
a known low-rank B (Hewitt & Manning's observation that any tree embeds so, N19-1419)."""

from __future__ import annotations

import numpy as np

from codeprobe.syntax import parse

NAMES = ("a", "b", "c", "x", "y")
MAX_TOKENS = 20


def _expression(rng: np.random.Generator, depth: int) -> str:
    if depth == 0 or rng.random() < 0.3:
        return str(rng.choice(NAMES))
    a, b = _expression(rng, depth - 1), _expression(rng, depth - 1)
    return (f"{a} + {b}", f"f({a}, {b})", f"({a})", f"{a}[{b}]")[int(rng.integers(4))]


def expression_trees(count: int, seed: int) -> list:
    """Token trees of `count` assignments of random expressions (3 to `MAX_TOKENS` tokens)."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        tree = parse(f"z = {_expression(rng, 3)}", "python").token_tree()
        if 3 <= len(tree) <= MAX_TOKENS:
            out.append(tree)
    return out


def path_vectors(heads: np.ndarray, width: int) -> np.ndarray:
    """float64 (n, width): x_i[k - 1] = 1 for every token k on the path from the root (token 0,
    left out) down to token i. ||x_i - x_j||^2 counts the edges on one path and not the other:
    the tree distance of i and j; ||x_i||^2 is i's depth."""
    n = heads.size
    x = np.zeros((n, width))
    for i in range(1, n):
        k = i
        while k > 0:
            x[i, k - 1] = 1.0
            k = int(heads[k])
    return x


def ast_path_vectors(tree, width: int) -> np.ndarray:
    """float64 (n, width): as `path_vectors`, over the AST's nodes (below the root) on the path to
    each token's leaf: squared distances are the leaf-to-leaf AST distances."""
    syntax = tree.tokens.tree
    x = np.zeros((len(tree), width))
    for i, node in enumerate(tree.tokens.node.tolist()):
        while node > 0:
            x[i, node - 1] = 1.0
            node = int(syntax.parent[node])
    return x


def embedded(x: np.ndarray, hidden: int, noise: float, rng: np.random.Generator, seed: int = 1) -> np.ndarray:
    """float32 (n, hidden): x (n, width) rotated into the first `width` of `hidden` orthonormal
    directions (fixed by `seed`), plus Gaussian noise of scale `noise` in the others. B* = the
    first `width` directions gives back x exactly, so the gold is realisable at rank `width`."""
    width = x.shape[1]
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(hidden, hidden)))
    return (x @ q[:width] + noise * rng.normal(size=(x.shape[0], hidden - width)) @ q[width:]).astype(np.float32)

"""Reference syntax oracle: a plain walk over tree-sitter nodes into networkx graphs, and
shortest paths by BFS, the way the original research code did it."""

from __future__ import annotations

import networkx as nx
import numpy as np
import tree_sitter

from codeprobe.syntax.languages import language_spec, ts_language


def oracle_graphs(code: str, language: str, wrapper=None):
    """(tree graph, U-AST graph, leaves) for `code`, parsed inside `wrapper` (a
    `codeprobe.syntax.languages.Wrapper`, or None for the code as given).

    leaves: list of (node id, type, text, start byte, end byte) in source order, excluding
    comments (the registry's comment types, with all they contain) and zero-width leaves; byte
    offsets are into `code`. Same-name edges join leaves of the registry's identifier types.
    """
    spec = language_spec(language)
    prefix, suffix = (wrapper.prefix, wrapper.suffix) if wrapper else ("", "")
    holder = wrapper.holder if wrapper else None
    lo = len(prefix.encode())
    hi = lo + len(code.encode())
    # Nodes reaching over the whitespace between the code and the wrapper's tokens are the
    # code's (their spans are clipped to it).
    lo_ws = len(prefix.rstrip().encode())
    hi_ws = hi + len(suffix) - len(suffix.lstrip())
    data = (prefix + code + suffix).encode()
    root = tree_sitter.Parser(ts_language(language)).parse(data).root_node
    tree = nx.Graph()
    tree.add_node("ROOT")
    leaves = []
    counter = iter(range(10**9))
    stack = [(root, "ROOT", False)]  # preorder, explicit stack: deep snippets need no recursion
    while stack:
        node, parent, skip = stack.pop()
        me = parent
        inside = node.start_byte >= lo_ws and node.end_byte <= hi_ws and node != root
        if inside and parent == "ROOT" and node.type == holder:
            inside = False  # the wrapper's node holding the code
        if inside:
            me = next(counter)
            tree.add_edge(parent, me)
            if skip or node.type in spec.comments:
                skip = True
            elif node.child_count == 0 and min(node.end_byte, hi) > max(node.start_byte, lo):
                start, end = max(node.start_byte, lo), min(node.end_byte, hi)
                leaves.append((me, node.type, data[start:end].decode(), start - lo, end - lo))
        stack.extend((child, me, skip) for child in reversed(node.children))

    uast = tree.copy()
    for a, b in zip(leaves, leaves[1:]):
        uast.add_edge(a[0], b[0])
    last = {}
    for leaf in leaves:
        if leaf[1] in spec.identifiers:
            if leaf[2] in last:
                uast.add_edge(last[leaf[2]], leaf[0])
            last[leaf[2]] = leaf[0]
    return tree, uast, leaves


def leaf_distances(graph: nx.Graph, leaves) -> np.ndarray:
    """All-pairs shortest-path lengths between leaves, via networkx BFS, int (n, n)."""
    ids = [leaf[0] for leaf in leaves]
    out = np.zeros((len(ids), len(ids)), dtype=np.int64)
    for i, a in enumerate(ids):
        lengths = nx.single_source_shortest_path_length(graph, a)
        out[i] = [lengths[b] for b in ids]
    return out

"""Export a syntax tree to networkx, for users who want to draw or query it with graph tools.

Not used on any hot path: the distances and probes work on the flat arrays.
"""

from __future__ import annotations

import networkx as nx

from codeprobe.syntax.tree import SyntaxTree


def tree_to_networkx(tree: SyntaxTree) -> nx.DiGraph:
    """The tree as a DiGraph with edges parent -> child, nodes numbered in preorder.

    Node attributes: `type`, `named`, `start_byte`, `end_byte`, `depth`, and `text` for leaves.
    """
    graph = nx.DiGraph(language=tree.language, grammar=tree.grammar.package_version)
    leaf = tree.is_leaf
    types = tree.types
    for i in range(tree.n_nodes):
        attrs = {
            "type": types[i],
            "named": bool(tree.is_named[i]),
            "start_byte": int(tree.start_byte[i]),
            "end_byte": int(tree.end_byte[i]),
            "depth": int(tree.depth[i]),
        }
        if leaf[i]:
            attrs["text"] = tree.node_text(i)
        graph.add_node(i, **attrs)
    graph.add_edges_from((int(tree.parent[i]), i) for i in range(1, tree.n_nodes))
    return graph

"""Reference token tree: the first-token head rule written out over a plain tree-sitter walk, as
a networkx graph (heads, depths and path lengths then come from networkx)."""

from __future__ import annotations

import networkx as nx

from oracles.relations import oracle_walk


def oracle_token_tree(code: str, language: str, wrapper=None, *, collapse_strings: bool = False):
    """(tokens, graph) of `code` parsed inside `wrapper` (None: as given).

    tokens: list of (type, start byte, end byte), byte offsets into `code`; graph: a DiGraph on
    the token indices with an edge head -> dependent wherever a node's head (its first token)
    differs from its parent's (the code's top nodes hang under the code's first token).
    """
    tokens, nodes, under, up = oracle_walk(code, language, wrapper, collapse_strings=collapse_strings)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(tokens)))
    for node in nodes:
        if not under[node.id]:
            continue
        head = min(under[node.id])
        above = up[node.id]
        above_head = min(under[above]) if above is not None else 0
        if head != above_head:
            graph.add_edge(above_head, head)
    return [t[:3] for t in tokens], graph

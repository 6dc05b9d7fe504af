"""Drawing a tree given by its constituents (label, lo, hi) over its tokens: as indented text
(`render_tree`) or as a `networkx` graph (`tree_to_networkx`), for display only."""

from __future__ import annotations

from collections.abc import Sequence


def render_tree(nodes: Sequence[tuple[str, int, int]], tokens: Sequence[str], max_token: int = 30) -> list[str]:
    """An indented text drawing of a tree given by its constituents (label, lo, hi): one line
    per constituent, outer before inner, and one per token (quoted, cut to `max_token`)."""
    order = sorted(range(len(nodes)), key=lambda k: (nodes[k][1], -nodes[k][2], k))
    lines: list[str] = []
    open_until: list[int] = []
    k = 0
    for t, text in enumerate(tokens):
        while open_until and open_until[-1] < t:
            open_until.pop()
        while k < len(order) and nodes[order[k]][1] == t:
            label, _, hi = nodes[order[k]]
            lines.append("  " * len(open_until) + label)
            open_until.append(hi)
            k += 1
        shown = text if len(text) <= max_token else text[: max_token - 3] + "..."
        lines.append("  " * len(open_until) + repr(shown))
    return lines


def tree_to_networkx(nodes: Sequence[tuple[str, int, int]], tokens: Sequence[str]):
    """A recovered (or gold) tree as a `networkx.DiGraph`, for drawing only: node k < len(nodes)
    is constituent k (attrs `label`, `lo`, `hi`), then one node per token (attrs `text`,
    `index`); edges go parent -> child."""
    import networkx as nx

    graph = nx.DiGraph()
    order = sorted(range(len(nodes)), key=lambda k: (nodes[k][1], -nodes[k][2], k))
    for k, (label, lo, hi) in enumerate(nodes):
        graph.add_node(k, label=label, lo=lo, hi=hi)
    stack: list[int] = []  # open constituents, outermost first
    it = iter(order)
    pending = next(it, None)
    for t, text in enumerate(tokens):
        leaf = len(nodes) + t
        graph.add_node(leaf, text=text, index=t)
        while stack and nodes[stack[-1]][2] < t:
            stack.pop()
        while pending is not None and nodes[pending][1] == t:
            if stack:
                graph.add_edge(stack[-1], pending)
            stack.append(pending)
            pending = next(it, None)
        if stack:
            graph.add_edge(stack[-1], leaf)
    return graph

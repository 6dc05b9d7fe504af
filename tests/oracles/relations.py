"""Reference relation extraction: a plain walk over tree-sitter nodes, reading each child's field
with `Node.field_name_for_child` and each node's tokens by collecting them under it, then the
rule of `codeprobe.syntax.relations` written out with loops."""

from __future__ import annotations

import tree_sitter

from codeprobe.syntax.languages import language_spec, ts_language


def oracle_walk(code: str, language: str, wrapper=None, *, collapse_strings: bool = False):
    """A plain walk over the tree-sitter nodes of `code` parsed inside `wrapper` (None: as given).

    Returns (tokens, nodes, under, up): tokens, a list of (type, start byte, end byte, named)
    with byte offsets into `code`; nodes, the nodes inside the code in preorder; under, node id ->
    its token indices; up, node id -> the id of its parent inside the code, or None for the
    code's top nodes (the root of a bare parse; the nodes directly under the wrapper's).
    """
    spec = language_spec(language)
    prefix, suffix = (wrapper.prefix, wrapper.suffix) if wrapper else ("", "")
    holder = wrapper.holder if wrapper else None
    lo = len(prefix.encode())
    hi = lo + len(code.encode())
    lo_ws = len(prefix.rstrip().encode())
    hi_ws = hi + len(suffix) - len(suffix.lstrip())
    data = (prefix + code + suffix).encode()
    root = tree_sitter.Parser(ts_language(language)).parse(data).root_node

    def inside(node, parent_inside: bool) -> bool:
        if node == root:
            return wrapper is None  # a bare parse's root is the code's; a wrapped one's is not
        ok = node.start_byte >= lo_ws and node.end_byte <= hi_ws
        return ok and not (node.type == holder and not parent_inside)

    tokens = []  # (type, start, end, named)
    under: dict[int, list[int]] = {}  # node id -> its token indices
    up: dict[int, int | None] = {}
    nodes = []
    stack = [(root, (), True)]  # (node, ancestors inside the code, parent inside)
    while stack:
        node, ancestors, parent_inside = stack.pop()
        me = inside(node, parent_inside)
        if me:
            nodes.append(node)
            under[node.id] = []
            up[node.id] = ancestors[-1] if ancestors else None
            ancestors = (*ancestors, node.id)
        if node.type in spec.comments:
            continue  # nothing inside a comment is a token
        collapsed = collapse_strings and node.type in spec.strings
        if me and (node.child_count == 0 or collapsed):
            start, end = max(node.start_byte, lo), min(node.end_byte, hi)
            if end > start:
                for a in ancestors:
                    under[a].append(len(tokens))
                tokens.append((node.type, start - lo, end - lo, node.is_named))
        if not collapsed:
            stack.extend((child, ancestors, me) for child in reversed(node.children))
    return tokens, nodes, under, up


def oracle_relations(code: str, language: str, wrapper=None, *, collapse_strings: bool = False):
    """(tokens, edges) of `code` parsed inside `wrapper` (None: as given).

    tokens: list of (type, start byte, end byte), byte offsets into `code`; edges: sorted list of
    (relation name, head token, dependent start, dependent end).
    """
    tokens, parents, under, _ = oracle_walk(code, language, wrapper, collapse_strings=collapse_strings)
    edges = []
    for node in parents:
        if node.type == "ERROR":
            continue
        fields = []  # (field, child's first token, child's end token), in source order
        for i, child in enumerate(node.children):
            name = node.field_name_for_child(i)
            toks = under.get(child.id, [])
            if name is not None and toks:
                fields.append((name, min(toks), max(toks) + 1))
        if not fields:
            continue
        first = {}
        for name, start, _ in fields:
            first.setdefault(name, start)
        for a, head in first.items():
            for b, start, end in fields:
                if b != a and head < first[b]:
                    edges.append((f"{node.type}:{a}->{b}", head, start, end))
        token = min(under[node.id])
        if not any(start <= token < end for _, start, end in fields):
            kind, _, _, named = tokens[token]
            word = kind if not named and kind.isidentifier() else "<first>"  # a keyword by its text
            for b, start, end in fields:
                edges.append((f"{node.type}:{word}->{b}", token, start, end))
    return [t[:3] for t in tokens], sorted(edges)

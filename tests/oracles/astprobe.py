"""Reference AST-Probe on networkx graphs, the way the original code (martin-wey/ast-probe,
src/data/binary_tree.py) does it: recursive binarization and read-off, recursive argmax rebuild,
graph rewrites for post-processing, and list-membership scoring. Tests check
codeprobe.probes.astprobe against it; benchmarks/bench_astprobe.py times both.

Its recursion goes as deep as a tree: the functions that recurse raise the interpreter's
recursion limit to `DEPTH` while they run and put it back when they return (`deep`); importing
the module changes nothing."""

from __future__ import annotations

import functools
import sys

import networkx as nx
import numpy as np

from codeprobe.syntax import SyntaxTree

EMPTY = "<empty>"
SEP = "<sep>"
DEPTH = 20_000


def deep(fn):
    """`fn` run with a recursion limit of at least `DEPTH`, the caller's limit restored after."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        before = sys.getrecursionlimit()
        if before >= DEPTH:
            return fn(*args, **kwargs)
        sys.setrecursionlimit(DEPTH)
        try:
            return fn(*args, **kwargs)
        finally:
            sys.setrecursionlimit(before)

    return run


def pruned_ast(tree: SyntaxTree) -> tuple[nx.DiGraph, int]:
    """The AST-Probe tree as a graph: comments dropped, strings collapsed into terminals,
    zero-width leaves and nodes left without tokens removed. Node attrs: type, terminal, start."""
    g = nx.DiGraph()
    types = tree.types
    for i in range(tree.n_nodes):
        g.add_node(
            i,
            type=str(types[i]),
            start=int(tree.start_byte[i]),
            width=int(tree.end_byte[i] - tree.start_byte[i]),
            leaf=bool(tree.is_leaf[i]),
        )
        if i:
            g.add_edge(int(tree.parent[i]), i)
    for n in list(g):
        if n in g and "comment" in g.nodes[n]["type"]:
            g.remove_nodes_from(list(nx.descendants(g, n)) + [n])
    for n in sorted(g):
        if n not in g:
            continue
        t = g.nodes[n]["type"]
        if (t == "string" or "string_literal" in t) and g.out_degree(n) > 0:
            g.remove_nodes_from(list(nx.descendants(g, n)))
            g.nodes[n]["collapsed"] = True
    for n in g:
        attrs = g.nodes[n]
        attrs["terminal"] = attrs.get("collapsed", False) or (attrs["leaf"] and attrs["width"] > 0)
    while True:
        dead = [n for n in g if g.out_degree(n) == 0 and not g.nodes[n]["terminal"]]
        if not dead:
            break
        g.remove_nodes_from(dead)
    return g, 0


def tokens_in_order(g: nx.DiGraph) -> list[int]:
    return sorted((n for n in g if g.nodes[n]["terminal"]), key=lambda n: g.nodes[n]["start"])


@deep
def binarize(g: nx.DiGraph, root: int) -> nx.DiGraph:
    """Reference ast2binary: merge unary chains, right-branch with <empty> helpers."""
    b = nx.DiGraph()
    counter = iter(range(10**9))

    def add(attrs):
        i = next(counter)
        b.add_node(i, **attrs)
        return i

    def kids(n):
        return sorted((m for _, m in g.out_edges(n)), key=lambda m: g.nodes[m]["start"])

    def rec(n, new):
        out = kids(n)
        if len(out) == 2:
            for m in out:
                x = add(dict(g.nodes[m]))
                b.add_edge(new, x)
                rec(m, x)
        elif len(out) == 1:
            m = out[0]
            if not g.nodes[m]["terminal"]:
                b.nodes[new]["type"] = b.nodes[new]["type"] + SEP + g.nodes[m]["type"]
                rec(m, new)
            else:
                b.nodes[new]["terminal"] = True
                b.nodes[new]["unary"] = b.nodes[new]["type"]
                b.nodes[new]["start"] = g.nodes[m]["start"]
        elif len(out) > 2:
            x = add(dict(g.nodes[out[0]]))
            b.add_edge(new, x)
            rec(out[0], x)
            helper = add({"type": EMPTY})
            b.add_edge(new, helper)
            rest = out[1:]
            for j, m in enumerate(rest):
                if b.out_degree(helper) == 1 and len(rest) - j > 1:
                    h2 = add({"type": EMPTY})
                    b.add_edge(helper, h2)
                    helper = h2
                x = add(dict(g.nodes[m]))
                b.add_edge(helper, x)
                rec(m, x)

    top = add(dict(g.nodes[root]))
    rec(root, top)
    return b


def _leaves(t, n):
    if t.out_degree(n) == 0:
        return [n]
    return [x for _, m in t.out_edges(n) for x in _leaves(t, m)]


def _leftmost(t, n):
    return min(t.nodes[x]["start"] for x in _leaves(t, n))


@deep
def read_tuple(b: nx.DiGraph, node: int = 0):
    """Reference tree_to_distance: (d, c, height, u) by recursion."""
    return _read_tuple(b, node)


def _read_tuple(b: nx.DiGraph, node: int):
    if b.out_degree(node) == 0:
        return [], [], 0, [b.nodes[node].get("unary", EMPTY)]
    x, y = [m for _, m in b.out_edges(node)]
    left, right = (x, y) if _leftmost(b, x) < _leftmost(b, y) else (y, x)
    dl, cl, hl, ul = _read_tuple(b, left)
    dr, cr, hr, ur = _read_tuple(b, right)
    h = max(hl, hr) + 1
    return dl + [h] + dr, cl + [b.nodes[node]["type"]] + cr, h, ul + ur


@deep
def oracle_tuple(tree: SyntaxTree):
    """(d, c, u) by the reference's recursive route."""
    g, root = pruned_ast(tree)
    d, c, _, u = read_tuple(binarize(g, root))
    return d, c, u


def ast_constituents(tree: SyntaxTree) -> list[str]:
    """Every non-terminal of the pruned AST as `type-i-j-...` (its token indices)."""
    g, _ = pruned_ast(tree)
    index = {n: k for k, n in enumerate(tokens_in_order(g))}
    out = []
    for n in g:
        if not g.nodes[n]["terminal"]:
            toks = sorted(index[x] for x in nx.descendants(g, n) if x in index)
            out.append(g.nodes[n]["type"] + "-" + "-".join(map(str, toks)))
    return out


@deep
def rebuild(d, c, u) -> nx.DiGraph:
    """Reference distance_to_tree + remove_empty_nodes + add_unary + extend_complex_nodes."""
    g = nx.DiGraph()
    counter = iter(range(10**9))

    def rec(d, c, u, father, start):
        if len(d) == 0:
            i = next(counter)
            g.add_node(i, type=str(start), start=start, unary=u[0])
            if father is not None:
                g.add_edge(father, i)
            return
        i = int(np.argmax(d))
        new = next(counter)
        g.add_node(new, type=c[i])
        if father is not None:
            g.add_edge(father, new)
        rec(d[:i], c[:i], u[: i + 1], new, start)
        rec(d[i + 1 :], c[i + 1 :], u[i + 1 :], new, start + i + 1)

    rec(list(d), list(c), list(u), None, 0)

    # remove_empty_nodes
    while True:
        empties = [n for n in g if g.nodes[n]["type"] == EMPTY]
        if not empties:
            break
        n = empties[0]
        if g.in_degree(n) == 0:
            g.nodes[n]["type"] = "bad_root"
            continue
        ((p, _),) = g.in_edges(n)
        for _, v in list(g.out_edges(n)):
            g.add_edge(p, v)
        g.remove_node(n)
    # add_unary
    for n in [n for n in g if g.out_degree(n) == 0]:
        if g.nodes[n]["unary"] != EMPTY:
            new = next(counter)
            g.add_node(new, type=g.nodes[n]["unary"])
            preds = list(g.in_edges(n))
            g.add_edge(new, n)
            for p, _ in preds:
                g.add_edge(p, new)
                g.remove_edge(p, n)
    # extend_complex_nodes
    while True:
        chains = [n for n in g if SEP in g.nodes[n]["type"]]
        if not chains:
            break
        n = chains[0]
        new_nodes = []
        for label in g.nodes[n]["type"].split(SEP):
            x = next(counter)
            g.add_node(x, type=label)
            if new_nodes:
                g.add_edge(new_nodes[-1], x)
            new_nodes.append(x)
        for p, _ in list(g.in_edges(n)):
            g.add_edge(p, new_nodes[0])
        for _, v in list(g.out_edges(n)):
            g.add_edge(new_nodes[-1], v)
        g.remove_node(n)
    return g


@deep
def multiset(g: nx.DiGraph, only: str | None = None) -> list[str]:
    """Every non-terminal as `label-i-j-...` (its leaves' starts); with `only`, those labelled so."""
    out = []
    for n in g:
        if g.out_degree(n) > 0 and (only is None or g.nodes[n]["type"] == only):
            leaves = sorted(g.nodes[x]["start"] for x in _leaves(g, n))
            out.append(g.nodes[n]["type"] + "-" + "-".join(map(str, leaves)))
    return out


def prf(gold: list[str], pred: list[str]) -> tuple[float, float, float]:
    """Reference get_precision_recall_f1 (0 where a denominator is 0)."""
    hits = float(len([x for x in pred if x in gold]))
    p = hits / len(pred) if pred else 0.0
    r = hits / len(gold) if gold else 0.0
    if p + r == 0:
        return 0.0, 0.0, 0.0
    return p, r, 2 * p * r / (p + r)


@deep
def oracle_score(gold_dcu, pred_dcu) -> tuple[float, float, float]:
    return prf(multiset(rebuild(*gold_dcu)), multiset(rebuild(*pred_dcu)))


@deep
def recall_non_terminal(gold_dcu, pred_dcu) -> dict[str, float]:
    """Reference get_recall_non_terminal: for each label of the gold tree's non-terminals, the
    predicted constituents (with repeats) found among the gold ones of that label, over their
    number."""
    g = rebuild(*gold_dcu)
    pred = multiset(rebuild(*pred_dcu))
    out = {}
    for label in {g.nodes[n]["type"] for n in g if g.out_degree(n) > 0}:
        of_label = multiset(g, only=label)
        out[label] = len([x for x in pred if x in of_label]) / len(of_label)
    return out


@deep
def oracle_recall_table(pairs) -> dict[str, float]:
    """Reference run_probing_eval_recall_non_terminal: per label, the mean over snippets of
    `recall_non_terminal`; `pairs` are (gold (d, c, u), predicted (d, c, u)) per snippet."""
    per_label: dict[str, list[float]] = {}
    for gold, pred in pairs:
        for label, r in recall_non_terminal(gold, pred).items():
            per_label.setdefault(label, []).append(r)
    return {label: float(np.mean(v)) for label, v in per_label.items()}

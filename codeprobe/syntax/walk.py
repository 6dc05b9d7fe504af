"""The tree-sitter walk: a whole tree-sitter tree as flat preorder arrays (`NodeArrays`).

Nodes are numbered in preorder (= source order for leaves), so a node's subtree is the
contiguous index range `[i, subtree_end[i])` and its parent always has a smaller index. The walk
is an iterative loop with an explicit stack: no recursion limit, whatever the nesting depth.
Each node's field in its parent (tree-sitter's field names, the grammar's `name:`, `body:`...)
comes from a second, cheaper pass with a tree cursor, which is where tree-sitter keeps them.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
import tree_sitter


class NodeArrays(NamedTuple):
    """Every node of a tree-sitter tree in preorder, one array entry each."""

    kind_ids: np.ndarray  # int64, tree-sitter symbol ids (0xFFFF = ERROR)
    parent: np.ndarray  # int32
    depth: np.ndarray  # int32
    start: np.ndarray  # int64
    end: np.ndarray  # int64
    missing: np.ndarray  # bool
    subtree_end: np.ndarray  # int64
    field: np.ndarray  # int32, tree-sitter field id of the node in its parent (0 = none)


def walk(ts_tree: tree_sitter.Tree) -> NodeArrays:
    """Preorder arrays of every node, from one iterative walk with an explicit stack.

    The Python loop (the one loop per node left) reads only what tree-sitter knows of each node
    itself; parents and depths follow from the subtree sizes in compiled code. (Faster than a
    TreeCursor walk: `node.children` builds each sibling list in C, and `descendant_count`
    gives subtree sizes for free.)
    """
    kind_ids: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    sizes: list[int] = []
    missing: list[int] = []
    add_kind, add_start, add_end, add_size = kind_ids.append, starts.append, ends.append, sizes.append
    stack = [ts_tree.root_node]  # next node on top
    pop, push_all = stack.pop, stack.extend
    while stack:
        node = pop()
        add_kind(node.kind_id)
        start, end = node.start_byte, node.end_byte
        add_start(start)
        add_end(end)
        add_size(node.descendant_count)  # counts the node itself
        if start == end and node.is_missing:  # only zero-width nodes can be MISSING
            missing.append(len(kind_ids) - 1)
        children = node.children
        if children:
            push_all(reversed(children))
    n = len(kind_ids)
    is_missing = np.zeros(n, dtype=bool)
    is_missing[missing] = True
    subtree_end = np.arange(n, dtype=np.int64) + np.asarray(sizes, dtype=np.int64)
    parent, depth = parents_and_depths(subtree_end)
    return NodeArrays(
        np.asarray(kind_ids, dtype=np.int64),
        parent,
        depth,
        np.asarray(starts, dtype=np.int64),
        np.asarray(ends, dtype=np.int64),
        is_missing,
        subtree_end,
        field_ids(ts_tree),
    )


def field_ids(ts_tree: tree_sitter.Tree) -> np.ndarray:
    """int32 (n_nodes,): each node's tree-sitter field id in its parent, 0 where it has none, in
    preorder (a tree cursor's order, the walk's). A cursor knows the field of the child it is
    on, a node does not; reading only that, this loop costs about a quarter of the walk."""
    out: list[int] = []
    add = out.append
    cursor = ts_tree.walk()
    down, right, up = cursor.goto_first_child, cursor.goto_next_sibling, cursor.goto_parent
    while True:
        add(cursor.field_id or 0)
        if down():
            continue
        while not right():
            if not up():
                return np.asarray(out, dtype=np.int32)


@numba.njit(cache=True, nogil=True)
def parents_and_depths(subtree_end):  # pragma: no cover - compiled
    """Parent (int32, -1 at the root) and depth (int32) of each node in preorder, from the
    one-past-the-end preorder index of each node's subtree: the open ancestors form a stack."""
    n = subtree_end.size
    parent = np.empty(n, dtype=np.int32)
    depth = np.empty(n, dtype=np.int32)
    if n == 0:
        return parent, depth
    stack = np.empty(n, dtype=np.int64)
    parent[0], depth[0], stack[0], top = -1, 0, 0, 1
    for i in range(1, n):
        while subtree_end[stack[top - 1]] <= i:
            top -= 1
        parent[i] = stack[top - 1]
        depth[i] = top
        stack[top] = i
        top += 1
    return parent, depth

"""A parse of the user's text inside a wrapper (text the grammar needs around a bare function,
see `languages.wrappers`): whether the user's text took in wrapper tokens (`consumes_wrapper`),
and the tree cut back to the user's text under a new root (`cut_wrapper`)."""

from __future__ import annotations

import numpy as np

from codeprobe.syntax.languages import TypeTable
from codeprobe.syntax.walk import NodeArrays


def cut_wrapper(arrays: NodeArrays, holder: np.ndarray, lo: int, hi: int, lo_ws: int, hi_ws: int) -> NodeArrays:
    """Keep only the nodes inside the user's byte range [lo, hi) (widened to [lo_ws, hi_ws) by
    the whitespace around it, then clipped back), under a new root; a `holder` node whose
    parent is the wrapper's is the wrapper's too."""
    inside = (arrays.start >= lo_ws) & (arrays.end <= hi_ws)
    inside[0] = False
    inside &= ~(holder & ~inside[np.maximum(arrays.parent, 0)])
    keep = np.flatnonzero(inside)
    # Everything under a kept node is kept too, so the kept set is a run of whole subtrees in
    # preorder; their old parents outside the range are replaced by the new root.
    new_index = np.full(arrays.parent.shape[0], -1, dtype=np.int64)
    new_index[keep] = np.arange(1, keep.size + 1)
    old_parent = arrays.parent[keep]
    top = ~inside[old_parent]
    new_parent = np.concatenate(([-1], np.where(top, 0, new_index[old_parent]))).astype(np.int32)
    # Depth below the new root: relative to the kept subtree's top node, which sits at depth 1.
    top_of = np.maximum.accumulate(np.where(top, np.arange(keep.size), 0))
    old_depth = arrays.depth[keep]
    new_depth = old_depth - old_depth[top_of] + 1
    start = np.clip(arrays.start[keep], lo, hi) - lo
    end = np.clip(arrays.end[keep], lo, hi) - lo
    return NodeArrays(
        np.concatenate((arrays.kind_ids[:1], arrays.kind_ids[keep])),
        new_parent,
        np.concatenate(([0], new_depth)).astype(np.int32),
        np.concatenate(([start.min() if keep.size else hi - lo], start)),
        np.concatenate(([hi - lo], end)),  # as tree-sitter's root: to the end of the input
        np.concatenate(([False], arrays.missing[keep])),
        np.concatenate(([keep.size + 1], new_index[arrays.subtree_end[keep] - 1] + 1)),
        # A node under the new root was in a field of the wrapper's node, if in any: not now.
        np.concatenate(([0], np.where(top, 0, arrays.field[keep]))).astype(np.int32),
    )


def consumes_wrapper(arrays: NodeArrays, table: TypeTable, lo: int, hi: int, lo_ws: int, hi_ws: int) -> bool:
    """Whether the user's text [lo, hi) took in wrapper tokens: some node overlaps both without
    being a wrapper node around all the user's code.

    Every node must lie inside [lo_ws, hi_ws) (the user's text and the whitespace around it),
    inside the prefix or suffix (the wrapper's), or start in the prefix and reach past the
    user's last non-comment token (a wrapper node around the user's code: a class body, say).
    Anything else spans the boundary: a user block closed by the wrapper's `}`, or a wrapper
    class closed by the user's stray `}`.
    """
    start, end = arrays.start, arrays.end
    leaf = arrays.subtree_end == np.arange(1, start.size + 1)
    comment = table.comment[table.of_kind[arrays.kind_ids]]
    code = leaf & ~comment & (start >= lo) & (end <= hi) & (end > start)
    last = end[code].max() if code.any() else lo
    fits = ((start >= lo_ws) & (end <= hi_ws)) | (end <= lo) | (start >= hi) | ((start < lo) & (end >= last))
    return not fits[1:].all()

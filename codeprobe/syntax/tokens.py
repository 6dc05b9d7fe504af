"""Code tokens: the terminals of a syntax tree in source order, as both probes define them.

Tokens are the leaves (keywords and punctuation included) minus comments and everything inside
them. Optionally, as AST-Probe does, every string node becomes one terminal token. Which types
are comments and strings is the grammar registry's `comments` and `strings` (for every
registered grammar: types containing `comment`; `string` and types containing
`string_literal`). Leaves of zero width (MISSING tokens the parser inserted, empty blocks) have
no source text and so are not tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from codeprobe.syntax.languages import type_table
from codeprobe.syntax.tree import SyntaxTree


@dataclass(frozen=True, eq=False)
class CodeTokens:
    """The code tokens of one `SyntaxTree`, in source order.

    Attributes:
        tree: the tree they come from.
        node: int64 (n,), each token's node index in `tree` (increasing).
        collapse_strings: whether string nodes were collapsed into single tokens.
    """

    tree: SyntaxTree
    node: np.ndarray
    collapse_strings: bool

    def __len__(self) -> int:
        return int(self.node.shape[0])

    @cached_property
    def types(self) -> tuple[str, ...]:
        """Node type of each token (e.g. "identifier", "(", "def")."""
        names = self.tree.type_names
        return tuple(names[i] for i in self.tree.type_ids[self.node])

    @cached_property
    def texts(self) -> tuple[str, ...]:
        """Source text of each token."""
        src = self.tree.source
        return tuple(src[s:e].decode("utf-8") for s, e in zip(self.start_byte.tolist(), self.end_byte.tolist()))

    @property
    def start_byte(self) -> np.ndarray:
        """int64 (n,): byte offset of each token's start in the user's code."""
        return self.tree.start_byte[self.node]

    @property
    def end_byte(self) -> np.ndarray:
        """int64 (n,): byte offset one past each token's end."""
        return self.tree.end_byte[self.node]

    @property
    def start_char(self) -> np.ndarray:
        """int64 (n,): character offset (into `tree.code`) of each token's start."""
        return self.tree.char_offsets[self.start_byte]

    @property
    def end_char(self) -> np.ndarray:
        """int64 (n,): character offset one past each token's end."""
        return self.tree.char_offsets[self.end_byte]

    @property
    def depth(self) -> np.ndarray:
        """int32 (n,): depth of each token's node in the tree (root = 0)."""
        return self.tree.depth[self.node]

    @cached_property
    def spans(self) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi), int64 (n_nodes,) each: the tokens inside each node of `tree`, the half-open
        token range [lo, hi) (a contiguous run, since nodes and tokens are both in preorder);
        lo == hi for a node that covers no token (a comment, a zero-width node, a node inside a
        collapsed string). lo is then the node's first token where it has any."""
        lo = np.searchsorted(self.node, np.arange(self.tree.n_nodes), side="left").astype(np.int64)
        hi = np.searchsorted(self.node, self.tree.subtree_end, side="left").astype(np.int64)
        lo.setflags(write=False)
        hi.setflags(write=False)
        return lo, hi


def code_tokens(tree: SyntaxTree, *, collapse_strings: bool = False) -> CodeTokens:
    """Select the code tokens of `tree` (see the module docstring for the rule).

    Returns:
        CodeTokens with the tokens' node indices in preorder, i.e. in source order.
    """
    n = tree.n_nodes
    end = tree.subtree_end
    table = type_table(tree.language)
    comment = table.comment[tree.type_ids]
    collapsed = table.string[tree.type_ids] if collapse_strings else np.zeros(n, bool)

    # A node strictly inside a comment or a collapsed string is never a token itself.
    covered = np.zeros(n, dtype=bool)
    outer = np.flatnonzero(comment | collapsed)
    if outer.size:
        # +1 just inside each such node, -1 past its subtree: a positive running sum = inside.
        cover = np.bincount(outer + 1, minlength=n + 1) - np.bincount(end[outer], minlength=n + 1)
        covered = np.cumsum(cover[:n]) > 0

    terminal = (tree.is_leaf | collapsed) & ~covered & ~comment
    terminal &= tree.end_byte > tree.start_byte
    return CodeTokens(tree=tree, node=np.flatnonzero(terminal), collapse_strings=collapse_strings)

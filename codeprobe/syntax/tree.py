"""A parsed snippet (`SyntaxTree`): every node of its concrete syntax tree as flat, read-only
numpy arrays in preorder, and its parse issues (`ParseIssue`). `codeprobe.syntax.parsing.parse`
makes one; `codeprobe.syntax.walk` numbers the nodes.

Nodes are numbered in preorder (= source order for leaves), so a node's subtree is the
contiguous index range `[i, subtree_end[i])` and its parent always has a smaller index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from codeprobe.syntax.languages import GrammarInfo, Wrapper


@dataclass(frozen=True)
class ParseIssue:
    """One ERROR or MISSING node, located in the user's text.

    Attributes:
        kind: "error" (text the grammar could not place) or "missing" (a token the parser
            inserted, zero width).
        node_type: "ERROR", or the type of the missing token (e.g. ")").
        start_byte, end_byte: byte span in the user's text.
        line, column: 1-based position of `start_byte` (column counts characters).
    """

    kind: str
    node_type: str
    start_byte: int
    end_byte: int
    line: int
    column: int

    def __str__(self) -> str:
        what = "syntax error" if self.kind == "error" else f"missing {self.node_type!r}"
        return f"{what} at line {self.line}, column {self.column}"


@dataclass(frozen=True, eq=False)
class SyntaxTree:
    """A parsed snippet: every node of the concrete tree, in preorder, as flat arrays.

    All per-node arrays have shape (n_nodes,). Byte offsets refer to `source`, the UTF-8 encoding
    of the user's `code` (a wrapper added for parsing is cut away). Node 0 is the root.

    Attributes:
        language: canonical language name.
        code: the user's text.
        type_names: the node types of the grammar (shared by its trees); `type_ids` index it.
        type_ids: int32, node type as an index into `type_names`.
        parent: int32, parent node index, -1 for the root.
        depth: int32, edges from the root (root = 0).
        start_byte, end_byte: int64, half-open byte span of each node.
        subtree_end: int64, one past the last preorder index of each node's subtree (a node's
            subtree is the index range [i, subtree_end[i])).
        is_named: bool, named node (anonymous nodes are keywords and punctuation; Python's
            `lambda` keyword is anonymous though its type name is also a named node's).
        is_missing: bool, zero-width token inserted by error recovery.
        is_error: bool, ERROR node.
        field_names: the grammar's field names (shared by its trees), "" at 0; `field_ids`
            index it.
        field_ids: int32, the node's field in its parent (tree-sitter's field names: an
            `if_statement`'s `condition`, a `call`'s `arguments`), 0 where it is in none.
        issues: every ERROR and MISSING node, located.
        grammar: the grammar that parsed it (package and version).
        wrapper: the wrapper used to make the snippet parse, or None.
    """

    language: str
    code: str
    type_names: tuple[str, ...]
    type_ids: np.ndarray
    parent: np.ndarray
    depth: np.ndarray
    start_byte: np.ndarray
    end_byte: np.ndarray
    subtree_end: np.ndarray
    is_named: np.ndarray
    is_missing: np.ndarray
    is_error: np.ndarray
    field_names: tuple[str, ...]
    field_ids: np.ndarray
    issues: tuple[ParseIssue, ...]
    grammar: GrammarInfo
    wrapper: Wrapper | None = field(default=None)

    @property
    def n_nodes(self) -> int:
        return int(self.parent.shape[0])

    @property
    def has_errors(self) -> bool:
        return bool(self.issues)

    @property
    def n_error_nodes(self) -> int:
        return sum(1 for issue in self.issues if issue.kind == "error")

    @property
    def n_missing_nodes(self) -> int:
        return sum(1 for issue in self.issues if issue.kind == "missing")

    @cached_property
    def source(self) -> bytes:
        """The user's code as UTF-8 bytes (what byte offsets index)."""
        return self.code.encode("utf-8")

    @cached_property
    def types(self) -> np.ndarray:
        """Node types as a string array, shape (n_nodes,)."""
        return np.asarray(self.type_names, dtype=object)[self.type_ids]

    @cached_property
    def child_count(self) -> np.ndarray:
        """int32 (n_nodes,): number of children of each node."""
        counts = np.bincount(self.parent[1:], minlength=self.n_nodes)
        return counts.astype(np.int32)

    @property
    def is_leaf(self) -> np.ndarray:
        """bool (n_nodes,): node without children."""
        return self.subtree_end == np.arange(1, self.n_nodes + 1)

    @cached_property
    def char_offsets(self) -> np.ndarray:
        """int64 (len(source) + 1,): character offset of every byte offset into `source`."""
        data = np.frombuffer(self.source, dtype=np.uint8)
        # A character starts at every byte that is not a UTF-8 continuation byte (10xxxxxx).
        starts = (data & 0xC0) != 0x80
        return np.concatenate(([0], np.cumsum(starts))).astype(np.int64)

    def node_text(self, index: int) -> str:
        """The source text under node `index`."""
        return self.source[self.start_byte[index] : self.end_byte[index]].decode("utf-8")

    def node_types_matching(self, predicate) -> np.ndarray:
        """bool (n_nodes,): nodes whose type name satisfies `predicate(name) -> bool`."""
        return _type_mask(self.type_names, predicate)[self.type_ids]

    def tokens(self, *, collapse_strings: bool = False):
        """The code tokens of this tree (see `codeprobe.syntax.tokens.code_tokens`)."""
        from codeprobe.syntax.tokens import code_tokens

        return code_tokens(self, collapse_strings=collapse_strings)

    def token_tree(self, *, collapse_strings: bool = False):
        """The token tree of this tree's code tokens, by the first-token head rule: each token's
        head (`heads`, -1 at the root) and depth, and their path lengths (see
        `codeprobe.syntax.token_tree`)."""
        from codeprobe.syntax.token_tree import token_tree

        return token_tree(self.tokens(collapse_strings=collapse_strings))

    def to_networkx(self):
        """The tree as a `networkx.DiGraph` (see `codeprobe.syntax.export.tree_to_networkx`)."""
        from codeprobe.syntax.export import tree_to_networkx

        return tree_to_networkx(self)


@lru_cache(maxsize=256)
def _type_mask(type_names: tuple[str, ...], predicate) -> np.ndarray:
    return np.fromiter((bool(predicate(t)) for t in type_names), bool, len(type_names))

"""Parsing: code text in, a whole tree-sitter tree out as flat, read-only numpy arrays.

Nodes are numbered in preorder (= source order for leaves), so a node's subtree is the
contiguous index range `[i, subtree_end[i])` and its parent always has a smaller index. The walk
is an iterative loop with an explicit stack: no recursion limit, whatever the nesting depth.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import NamedTuple

import numba
import numpy as np
import tree_sitter

from codeprobe.errors import CodeParseError, EmptyCodeError, InvalidSourceError
from codeprobe.syntax.languages import (
    ERROR_KIND,
    GrammarInfo,
    TypeTable,
    Wrapper,
    canonical_language,
    grammar_info,
    ts_language,
    type_table,
    wrappers,
)


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
        is_named: bool, named node (anonymous nodes are keywords and punctuation).
        is_missing: bool, zero-width token inserted by error recovery.
        is_error: bool, ERROR node.
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

    def to_networkx(self):
        """The tree as a `networkx.DiGraph` (see `codeprobe.syntax.export.tree_to_networkx`)."""
        from codeprobe.syntax.export import tree_to_networkx

        return tree_to_networkx(self)


def parse(code: str | bytes, language: str, *, strict: bool = False) -> SyntaxTree:
    """Parse a snippet (a function, a method, or a whole file) into a `SyntaxTree`.

    The text is parsed as given first. Only if that parse has issues (or, for PHP, finds no open
    tag and so reads the whole text as inline HTML) are the language's wrappers tried: a bare
    function that the grammar only accepts inside a file (a method outside its class, an
    indented Python method, PHP without `<?php`). A wrapped parse is kept only if the user's text
    consumed no wrapper token (no node spans from the user's text into the wrapper, except the
    wrapper's own nodes around all of it) and it ranks strictly better than every parse tried
    before it: a parse that finds the grammar's code marker beats one that does not, then fewer
    issues, counted over the whole wrapped text, win. The tree, its offsets and its tokens are
    always exactly those of the user's text.

    Args:
        code: the source, as text or UTF-8 bytes.
        language: a name from `known_languages()` (case-insensitive, aliases allowed).
        strict: raise `CodeParseError` if the tree has any ERROR or MISSING node.

    Raises:
        UnknownLanguageError, EmptyCodeError, InvalidSourceError, CodeParseError (strict only).
    """
    language = canonical_language(language)
    text = _as_text(code)
    source = text.encode("utf-8")

    best, best_rank = _parse_with(text, source, language, None)
    for wrapper in wrappers(language):
        if best_rank == _CLEAN:
            break
        tree, rank = _parse_with(text, source, language, wrapper)
        if tree is not None and rank < best_rank:
            best, best_rank = tree, rank
    assert best is not None  # the bare parse is always a candidate

    if strict and best.issues:
        first = best.issues[0]
        raise CodeParseError(
            f"{language} code does not parse: {len(best.issues)} problem(s), first: {first}",
            best.issues,
        )
    return best


def _as_text(code: str | bytes) -> str:
    """The code as text. Binary data is refused by what no source text holds: bytes that are not
    UTF-8, or a NUL character (compilers reject it, and it is git's test for binary). Any other
    control character is left to the grammar: valid source may hold a few (an ESC in a string)."""
    if isinstance(code, (bytes, bytearray, memoryview)):
        try:
            text = bytes(code).decode("utf-8")
        except UnicodeDecodeError as err:
            raise InvalidSourceError(f"code is not valid UTF-8 (bad byte at offset {err.start})") from None
    elif isinstance(code, str):
        text = code
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise InvalidSourceError(f"code contains an unencodable character at offset {err.start}") from None
    else:
        raise TypeError(f"code must be str or bytes, not {type(code).__name__}")

    if not text.lstrip("\ufeff").strip():  # a leading byte-order mark is no content
        raise EmptyCodeError("code is empty" if not text else "code is whitespace only")
    if "\x00" in text:
        raise InvalidSourceError(f"code contains a NUL character at offset {text.index(chr(0))}: binary data?")
    return text


# A parse's rank, lower is better: (whether it lacks the grammar's code marker, issues).
_CLEAN = (False, 0)


def _parse_with(
    text: str, source: bytes, language: str, wrapper: Wrapper | None
) -> tuple[SyntaxTree | None, tuple[bool, int]]:
    """Parse `source` inside `wrapper` (None: as given) and rank the parse.

    Returns (tree, rank); tree is None when the user's text consumed wrapper tokens.
    """
    prefix = wrapper.prefix.encode() if wrapper else b""
    suffix = wrapper.suffix.encode() if wrapper else b""
    ts_tree = _parser(language).parse(prefix + source + suffix)
    arrays = _walk(ts_tree)
    table = type_table(language)
    lo, hi = len(prefix), len(prefix) + len(source)
    # Nodes may reach over the whitespace between the user's text and the wrapper's tokens (a
    # Swift `statements` node ends on the newline before the wrapper's `}`): that whitespace
    # counts as the user's.
    lo_ws = lo - (len(prefix) - len(prefix.rstrip()))
    hi_ws = hi + (len(suffix) - len(suffix.lstrip()))
    # Located on the whole parse, before the cut: an error in the wrapper's text is still caused
    # by the user's (a wrapper that parses alone only fails through what it wraps).
    issues = _locate_issues(arrays, table, source, lo, hi) if ts_tree.root_node.has_error else ()
    lacks_marker = table.marker >= 0 and not np.any(table.of_kind[arrays.kind_ids] == table.marker)
    rank = (bool(lacks_marker), len(issues))
    if wrapper is not None:
        if _consumes_wrapper(arrays, table, lo, hi, lo_ws, hi_ws):
            return None, rank
        holder = table.names.index(wrapper.holder) if wrapper.holder else -1
        arrays = _cut_wrapper(arrays, table.of_kind[arrays.kind_ids] == holder, lo, hi, lo_ws, hi_ws)
    type_ids = table.of_kind[arrays.kind_ids]

    tree = SyntaxTree(
        language=language,
        code=text,
        type_names=table.names,
        type_ids=_frozen(type_ids),
        parent=_frozen(arrays.parent),
        depth=_frozen(arrays.depth),
        start_byte=_frozen(arrays.start),
        end_byte=_frozen(arrays.end),
        subtree_end=_frozen(arrays.subtree_end),
        is_named=_frozen(table.named[type_ids]),
        is_missing=_frozen(arrays.missing),
        is_error=_frozen(arrays.kind_ids == ERROR_KIND),
        issues=issues,
        grammar=grammar_info(language),
        wrapper=wrapper,
    )
    return tree, rank


class _Arrays(NamedTuple):
    kind_ids: np.ndarray  # int64, tree-sitter symbol ids (0xFFFF = ERROR)
    parent: np.ndarray  # int32
    depth: np.ndarray  # int32
    start: np.ndarray  # int64
    end: np.ndarray  # int64
    missing: np.ndarray  # bool
    subtree_end: np.ndarray  # int64


def _walk(ts_tree: tree_sitter.Tree) -> _Arrays:
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
    parent, depth = _parents_and_depths(subtree_end)
    return _Arrays(
        np.asarray(kind_ids, dtype=np.int64),
        parent,
        depth,
        np.asarray(starts, dtype=np.int64),
        np.asarray(ends, dtype=np.int64),
        is_missing,
        subtree_end,
    )


@numba.njit(cache=True, nogil=True)
def _parents_and_depths(subtree_end):  # pragma: no cover - compiled
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


def _cut_wrapper(arrays: _Arrays, holder: np.ndarray, lo: int, hi: int, lo_ws: int, hi_ws: int) -> _Arrays:
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
    return _Arrays(
        np.concatenate((arrays.kind_ids[:1], arrays.kind_ids[keep])),
        new_parent,
        np.concatenate(([0], new_depth)).astype(np.int32),
        np.concatenate(([start.min() if keep.size else hi - lo], start)),
        np.concatenate(([hi - lo], end)),  # as tree-sitter's root: to the end of the input
        np.concatenate(([False], arrays.missing[keep])),
        np.concatenate(([keep.size + 1], new_index[arrays.subtree_end[keep] - 1] + 1)),
    )


def _consumes_wrapper(arrays: _Arrays, table: TypeTable, lo: int, hi: int, lo_ws: int, hi_ws: int) -> bool:
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


def _locate_issues(arrays: _Arrays, table: TypeTable, source: bytes, lo: int, hi: int) -> tuple[ParseIssue, ...]:
    """Every ERROR and MISSING node, in the user's coordinates: spans are clipped to the user's
    byte range [lo, hi], so an issue in the wrapper's text sits at the nearer end of the code."""
    kind_ids, start, end = arrays.kind_ids, arrays.start, arrays.end
    flagged = (kind_ids == ERROR_KIND) | arrays.missing
    issues = []
    for i in np.flatnonzero(flagged):
        s = int(np.clip(start[i], lo, hi)) - lo
        e = int(np.clip(end[i], lo, hi)) - lo
        line_start = source.rfind(b"\n", 0, s) + 1
        issues.append(
            ParseIssue(
                kind="error" if kind_ids[i] == ERROR_KIND else "missing",
                node_type=table.names[table.of_kind[kind_ids[i]]],
                start_byte=s,
                end_byte=e,
                line=source.count(b"\n", 0, s) + 1,
                column=len(source[line_start:s].decode("utf-8", "replace")) + 1,
            )
        )
    return tuple(issues)


def _parser(language: str) -> tree_sitter.Parser:
    """This thread's parser for `language` (parsers are not thread-safe; building one per call
    costs as much as parsing a small function)."""
    parsers = _PARSERS.__dict__.setdefault("by_language", {})
    if language not in parsers:
        parsers[language] = tree_sitter.Parser(ts_language(language))
    return parsers[language]


_PARSERS = threading.local()


@lru_cache(maxsize=256)
def _type_mask(type_names: tuple[str, ...], predicate) -> np.ndarray:
    return np.fromiter((bool(predicate(t)) for t in type_names), bool, len(type_names))


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array

"""Parsing: code text in, a `SyntaxTree` out. The text is checked, parsed as given and, when
that parse has issues, inside each of the language's wrappers; the best-ranked parse whose tree
is exactly the user's text wins (see `parse`)."""

from __future__ import annotations

import threading

import numpy as np
import tree_sitter

from codeprobe.errors import CodeParseError, EmptyCodeError, InvalidSourceError
from codeprobe.syntax.languages import (
    ERROR_KIND,
    TypeTable,
    Wrapper,
    canonical_language,
    grammar_info,
    ts_language,
    type_table,
    wrappers,
)
from codeprobe.syntax.tree import ParseIssue, SyntaxTree
from codeprobe.syntax.walk import NodeArrays, walk
from codeprobe.syntax.wrapped import consumes_wrapper, cut_wrapper


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
    arrays = walk(ts_tree)
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
        if consumes_wrapper(arrays, table, lo, hi, lo_ws, hi_ws):
            return None, rank
        holder = table.names.index(wrapper.holder) if wrapper.holder else -1
        arrays = cut_wrapper(arrays, table.of_kind[arrays.kind_ids] == holder, lo, hi, lo_ws, hi_ws)
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
        is_named=_frozen(table.kind_named[arrays.kind_ids]),
        is_missing=_frozen(arrays.missing),
        is_error=_frozen(arrays.kind_ids == ERROR_KIND),
        field_names=table.fields,
        field_ids=_frozen(arrays.field),
        issues=issues,
        grammar=grammar_info(language),
        wrapper=wrapper,
    )
    return tree, rank


def _locate_issues(arrays: NodeArrays, table: TypeTable, source: bytes, lo: int, hi: int) -> tuple[ParseIssue, ...]:
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


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array

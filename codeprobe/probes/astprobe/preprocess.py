"""AST-Probe's source preprocessing, as the reference code applies it before extracting tuples.

The reference (Hernández López et al., ASE 2022, arXiv 2206.11719; its `code2ast`) rewrites
every snippet before parsing it, and the language model then sees the rewritten text too:

- Python: the snippet is re-assembled from Python's own tokenizer (`tokenize`) with
    - every comment left out;
    - a string literal left out when it is the first token of a logical line (the token before
      it is INDENT or NEWLINE: docstrings, but also any statement that starts with a string,
      e.g. `"".join(x)` loses its `""` and then fails to parse) or when it starts in column 0;
    - line continuations (backslash-newline) gone: the tokenizer has no token for them, so the
      continued line is glued onto the previous one;
    - whitespace-only lines dropped and lines joined with "\\n" (no final newline).
  Spacing inside a line is kept (gaps between tokens are re-created as spaces; indentation is
  re-created as spaces too, except on the first line of a block, whose INDENT keeps its text).
- other languages: comments removed (the reference used regular expressions for JavaScript and
  Go, and tree-sitter comment spans for Ruby; here tree-sitter comment spans for all). Comments
  are never tuple tokens, so only the model's input changes.

Removing docstrings matters for the metric: with them, every documented function has an easy
`expression_statement` constituent, which lifts the trivial baselines (see docs/paper-switches.md).
"""

from __future__ import annotations

import io
import tokenize

from codeprobe.errors import InputError
from codeprobe.syntax import parse
from codeprobe.syntax.languages import canonical_language, language_spec

# Tokens after which a string starts a logical line (the reference's test).
_LINE_START = (tokenize.INDENT, tokenize.NEWLINE)


def remove_docstrings(code: str, language: str) -> str:
    """The snippet as the reference's preprocessing leaves it (see the module docstring).

    Args:
        code: one snippet's source text.
        language: its language.

    Returns:
        The rewritten text; for Python without trailing newline, blank lines or comments.

    Raises:
        InputError: Python that its tokenizer rejects (unbalanced brackets, bad dedent, an
            unterminated string), so it has no rewritten form.
    """
    language = canonical_language(language)
    if language == "python":
        return _python(code)
    return _without_comments(code, language)


def _python(code: str) -> str:
    pieces: list[str] = []
    previous = tokenize.INDENT  # the reference starts as if after an INDENT
    row, col = -1, 0  # where the previous token ended
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            (start_row, start_col), (end_row, end_col) = tok.start, tok.end
            if start_row > row:
                col = 0
            # The gap before a token is re-created even when the token itself is left out.
            if start_col > col:
                pieces.append(" " * (start_col - col))
            dropped = tok.type == tokenize.COMMENT or (
                tok.type == tokenize.STRING and (previous in _LINE_START or start_col == 0)
            )
            if not dropped:
                pieces.append(tok.string)
            previous = tok.type
            row, col = end_row, end_col
    except (tokenize.TokenError, SyntaxError) as err:  # IndentationError is a SyntaxError
        raise InputError(f"Python's tokenizer rejects this code: {err}") from err
    return "\n".join(line for line in "".join(pieces).splitlines() if line.strip())


def _without_comments(code: str, language: str) -> str:
    tree = parse(code, language)
    comment_types = set(language_spec(language).comments)
    comments = tree.node_types_matching(comment_types.__contains__)
    if not comments.any():
        return code
    source = tree.source
    kept, at = [], 0
    # Comments do not nest, so their spans in preorder are disjoint and increasing.
    for node in comments.nonzero()[0].tolist():
        start, end = int(tree.start_byte[node]), int(tree.end_byte[node])
        if start >= at:
            kept.append(source[at:start])
            at = end
    kept.append(source[at:])
    return b"".join(kept).decode("utf-8")

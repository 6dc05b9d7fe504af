"""`load_dataset`: one entry point that checks a dataset up front and streams its snippets."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from codeprobe.datasets import records, sources
from codeprobe.datasets.snippet import SkipCounter, Snippet
from codeprobe.errors import DatasetError
from codeprobe.syntax.languages import canonical_language, known_languages

log = logging.getLogger("codeprobe.datasets")

FORMATS = ("jsonl", "json", "tokens", "source")
STDLIB_NAMES = ("stdlib", "stdlib:python")
# Token files lose line breaks and indentation: the trees of these languages change with them.
_LAYOUT_LANGUAGES = {"python": "refused", "ruby": "partial"}


def load_dataset(
    spec: str | os.PathLike,
    language: str | None = None,
    *,
    counter: SkipCounter,
    format: str | None = None,
    code_field: str | None = None,
    max_file_bytes: int = sources.DEFAULT_MAX_FILE_BYTES,
) -> Iterator[Snippet]:
    """Check a dataset now, then stream its snippets lazily.

    Everything that would make the whole run fail is checked before this returns: the path
    exists, its format is known, a JSON list parses, a language can be told. Row-level problems
    come later, while streaming, and are counted in `counter` (see `SKIP_REASONS`).

    Args:
        spec: what to load, one of
            - `"stdlib"` or `"stdlib:python"`: the functions of the running interpreter's
              standard library (test directories and site-packages left out); write `./stdlib`
              for a path of that name;
            - a `.jsonl` / `.jsonl.gz` / `.ndjson` file: one JSON object per line with a `code`,
              `original_string` or `func` field (CodeSearchNet style), an optional `language`
              and an optional id (`id`, `idx`, `index` or `url`);
            - a `.json` file: a list of such objects (read whole), or JSON lines if its first
              character is `{`;
            - a `.txt` / `.tsv` file: `id<TAB>space-separated tokens`, one function per line
              (layout is lost: refused for Python, partial for Ruby; see
              `records.token_file_snippets`);
            - a directory or git checkout (tracked files only), or one source file: functions
              and methods extracted with tree-sitter (see `sources`).
        language: the language wanted. Rows whose `language` field names another are skipped as
            `wrong_language`; rows without one take this. If None: the rows' own field, else a
            language named in the file name (`python_test_0.jsonl`, `csn-java-test-tokens.txt`),
            else for source files their extensions (all known languages in a directory).
        counter: receives a `count_read` per row and a `skip` per dropped row.
        format: one of `FORMATS` to override the choice by extension.
        code_field: the record field holding the code (default: the first of `code`,
            `original_string`, `func` present).
        max_file_bytes: source files larger than this are skipped as `file_too_large`.

    Returns:
        A generator of `Snippet`s, in file order.

    Raises:
        DatasetError: missing path, unknown format, unreadable JSON list, no way to tell the
            language, or Python in a token file. UnknownLanguageError: unknown `language`.
    """
    wanted = canonical_language(language) if language is not None else None
    if isinstance(spec, str) and spec.strip().lower() in STDLIB_NAMES:
        if wanted not in (None, "python"):
            raise DatasetError(f"the standard library is Python, not {wanted}")
        root = sources.stdlib_root()
        if not root.is_dir():
            raise DatasetError(f"the standard library directory {root} does not exist")
        return sources.directory_snippets(root, ["python"], counter=counter, stdlib=True, max_file_bytes=max_file_bytes)

    path = Path(spec)
    if not path.exists():
        raise DatasetError(f"dataset not found: {spec} (no such file or directory)")
    fmt = _format(path, format)
    if fmt == "source":
        return _source_snippets(path, wanted, counter, max_file_bytes)
    named = None if wanted else _language_in_name(path)

    if fmt == "tokens":
        if not records.token_file_has_tabs(path):
            raise DatasetError(f"{path} is not an id<TAB>tokens file: its first line has no tab")
        token_language = wanted or named
        if token_language is None:
            raise DatasetError(f"cannot tell the language of {path}: pass a language")
        if _LAYOUT_LANGUAGES.get(token_language) == "refused":
            raise DatasetError(
                f"{path}: a space-tokenized file has lost its layout, and {token_language} "
                "code depends on line breaks and indentation; use a source with the original "
                "layout (JSON lines or JSON with a code field, or source files)"
            )
        if token_language in _LAYOUT_LANGUAGES:
            log.warning(
                "%s: layout is lost in token files; %s statements that ended at a line "
                "break run together, so some trees differ from the original's",
                path.name,
                token_language,
            )
        else:
            log.info("%s: layout is lost in token files; %s ignores it", path.name, token_language)
        return records.token_file_snippets(path, language=token_language, counter=counter)

    default = wanted or named
    if fmt == "json":
        rows = records.read_json_list(path)
        first = next((r for r in rows if isinstance(r, dict)), None)
        _check_language_known(path, default, first)
        return records.json_list_snippets(
            path, rows, language=wanted, default_language=default, counter=counter, code_field=code_field
        )
    _check_language_known(path, default, records.first_jsonl_record(path))
    return records.jsonl_snippets(
        path, language=wanted, default_language=default, counter=counter, code_field=code_field
    )


def _format(path: Path, format: str | None) -> str:
    if format is not None:
        if format not in FORMATS:
            raise DatasetError(f"unknown dataset format {format!r}; known: {', '.join(FORMATS)}")
        if format == "source" and not (path.is_dir() or sources.language_of_file(path)):
            raise DatasetError(f"{path} is neither a directory nor a source file")
        if format != "source" and path.is_dir():
            raise DatasetError(f"{path} is a directory, not a {format} file")
        return format
    if path.is_dir() or sources.language_of_file(path) is not None:
        return "source"
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
        return "jsonl"
    if name.endswith((".txt", ".tsv")):
        return "tokens"
    if name.endswith(".json"):
        with path.open("rb") as f:
            head = f.read(4096).decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
        if head.startswith("["):
            return "json"
        if head.startswith("{"):
            return "jsonl"
        raise DatasetError(f"{path} is not a JSON list or JSON lines: it starts with {head[:20]!r}")
    raise DatasetError(
        f"unknown dataset format: {path.name}; expected a directory, a source file "
        f"({', '.join(sorted(sources.EXTENSIONS))}), .jsonl[.gz], .json, .txt or .tsv, "
        "or 'stdlib'"
    )


def _source_snippets(path: Path, wanted: str | None, counter: SkipCounter, max_file_bytes: int) -> Iterator[Snippet]:
    if path.is_dir():
        languages = [wanted] if wanted else list(known_languages())
        return sources.directory_snippets(path, languages, counter=counter, max_file_bytes=max_file_bytes)
    own = sources.language_of_file(path)
    if wanted is not None and own != wanted:
        raise DatasetError(f"{path} is {own} by its extension, not {wanted}")
    return iter(sources.file_snippets(path, name=path.name, counter=counter, max_file_bytes=max_file_bytes))


def _language_in_name(path: Path) -> str | None:
    """The one known language named as a word of the file name, if exactly one is."""
    words = set(re.split(r"[^a-z0-9]+", path.name.lower()))
    hits = words & set(known_languages())
    if len(hits) == 1:
        (language,) = hits
        log.info("%s: language %s, from the file name", path.name, language)
        return language
    return None


def _check_language_known(path: Path, default: str | None, first_record) -> None:
    """Fail up front when rows carry no language and none was given or named."""
    if default is None and not (isinstance(first_record, dict) and "language" in first_record):
        raise DatasetError(
            f"cannot tell the language of {path}: its rows have no 'language' field; "
            f"pass a language ({', '.join(known_languages())})"
        )

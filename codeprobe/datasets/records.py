"""Loaders for row-shaped datasets: JSON lines, a JSON list, and id<TAB>tokens files.

Each loader is a generator over already-validated input (`load_dataset` checks the file, its
format and the language up front). Rows are decoded one at a time; a bad row is counted in the
`SkipCounter` under its reason and the run goes on.

Undecodable bytes are read with `surrogateescape`, so one bad byte in a row's docstring does not
cost the row: only a `code` field that holds such bytes is skipped (as `invalid_utf8`).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from codeprobe.datasets.snippet import SkipCounter, Snippet, text_problem
from codeprobe.errors import DatasetError, UnknownLanguageError
from codeprobe.syntax.languages import canonical_language

# Tried in order. CodeSearchNet has `code` and `original_string`; Devign and others have `func`.
CODE_FIELDS = ("code", "original_string", "func")
# A record's own id, tried in order; CodeSearchNet rows have only `url`.
ID_FIELDS = ("id", "idx", "index", "url")


@contextmanager
def open_binary(path: Path):
    """The file as a binary stream, gunzipped when it ends in .gz."""
    with gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb") as f:
        yield f


def read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line without its line break); a corrupt gzip stream is a
    `DatasetError`, since nothing after it can be read."""
    lineno = 0
    try:
        with open_binary(path) as f:
            for lineno, raw in enumerate(f, 1):
                yield lineno, raw.rstrip(b"\r\n")
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetError(f"{path}: cannot read past line {lineno}: {err}") from None


def _counted_lines(path: Path, counter) -> Iterator[tuple[int, str, bytes]]:
    """(line number, "file:line", raw line) of every non-blank line; each line is counted as
    read, and blank ones as skipped ("empty")."""
    for lineno, raw in read_lines(path):
        counter.count_read()
        where = f"{path.name}:{lineno}"
        if not raw.strip():
            counter.skip("empty", where, "blank line")
            continue
        yield lineno, where, raw


def first_jsonl_record(path: Path) -> dict | None:
    """The first non-blank line of a JSON-lines file if it is a JSON object, else None."""
    for _, raw in read_lines(path):
        if raw.strip():
            try:
                record = json.loads(raw.decode("utf-8", "surrogateescape").lstrip("\ufeff"))
            except (ValueError, RecursionError):
                return None
            return record if isinstance(record, dict) else None
    return None


def jsonl_snippets(
    path: Path,
    *,
    language: str | None,
    default_language: str | None,
    counter: SkipCounter,
    code_field: str | None,
) -> Iterator[Snippet]:
    """Snippets of a JSON-lines file (one JSON object per line, CodeSearchNet style).

    ids: the record's own (`ID_FIELDS`), else `<file stem>:<line>`; sources `<file>:<line>`.
    """
    rows = _RowChecker(counter, language, default_language, code_field)
    stem = _stem(path)
    for lineno, where, raw in _counted_lines(path, counter):
        text = raw.decode("utf-8", "surrogateescape")
        if lineno == 1:
            text = text.lstrip("\ufeff")
        try:
            record = json.loads(text)
        except (ValueError, RecursionError) as err:
            counter.skip("not_json", where, str(err).splitlines()[0][:80])
            continue
        snippet = rows.check(record, fallback_id=f"{stem}:{lineno}", source=where)
        if snippet is not None:
            yield snippet


def read_json_list(path: Path) -> list:
    """The records of a JSON file holding one list, read whole (JSON has no streaming form
    here). Raises `DatasetError` if the file is not JSON or not a list."""
    with open_binary(path) as f:
        text = f.read().decode("utf-8", "surrogateescape").lstrip("\ufeff")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise DatasetError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, list):
        raise DatasetError(
            f"{path} holds a JSON {type(data).__name__}, not a list of records "
            "(for one object per line, name it .jsonl)"
        )
    return data


def json_list_snippets(
    path: Path,
    records: list,
    *,
    language: str | None,
    default_language: str | None,
    counter: SkipCounter,
    code_field: str | None,
) -> Iterator[Snippet]:
    """Snippets of a JSON list already read by `read_json_list`.

    ids: the record's own (`ID_FIELDS`), else `<file stem>#<index>`; sources `<file>#<index>`.
    """
    rows = _RowChecker(counter, language, default_language, code_field)
    stem = _stem(path)
    for index, record in enumerate(records):
        counter.count_read()
        snippet = rows.check(record, fallback_id=f"{stem}#{index}", source=f"{path.name}#{index}")
        if snippet is not None:
            yield snippet


def token_file_snippets(path: Path, *, language: str, counter: SkipCounter) -> Iterator[Snippet]:
    """Snippets of a space-tokenized file: one function per line, `id<TAB>tokens`.

    The code is the tokens joined by single spaces, as in CodeXGLUE's code-to-text files: the
    original layout (line breaks, indentation) is lost, so only languages whose grammar ignores
    whitespace give the original tree (Java, JavaScript, Go, PHP). `load_dataset` refuses
    Python; Ruby loads, but statements that ended at a line break now run together.
    """
    seen: set[str] = set()
    for _lineno, where, raw in _counted_lines(path, counter):
        raw_id, tab, raw_code = raw.partition(b"\t")
        ident = raw_id.decode("utf-8", "replace").strip()
        if not tab or not ident:
            counter.skip("bad_record", where, "not id<TAB>tokens")
            continue
        try:
            code = raw_code.decode("utf-8").strip()
        except UnicodeDecodeError as err:
            counter.skip("invalid_utf8", ident, f"byte {err.start} of the tokens")
            continue
        problem = text_problem(code)
        if problem is not None:
            counter.skip(problem[0], ident, problem[1])
            continue
        if ident in seen:
            counter.skip("duplicate_id", ident, where)
            continue
        seen.add(ident)
        yield Snippet(id=ident, language=language, code=code, source=where)


def token_file_has_tabs(path: Path) -> bool:
    """Whether the first non-blank line of `path` looks like `id<TAB>tokens`."""
    for _, raw in read_lines(path):
        if raw.strip():
            return b"\t" in raw
    return True  # an empty file is a valid (empty) dataset


class _RowChecker:
    """Turns one decoded JSON record into a Snippet, or counts why it cannot be one."""

    def __init__(
        self, counter: SkipCounter, language: str | None, default_language: str | None, code_field: str | None
    ):
        self.counter = counter
        self.language = language  # asked for: rows in other languages are skipped
        self.default_language = default_language  # for rows without a `language` field
        self.code_fields = (code_field,) if code_field else CODE_FIELDS
        self.seen: set[str] = set()

    def check(self, record: Any, *, fallback_id: str, source: str) -> Snippet | None:
        skip = self.counter.skip
        if not isinstance(record, dict):
            skip("bad_record", source, f"a JSON {type(record).__name__}, not an object")
            return None
        ident = _record_id(record) or fallback_id
        language = self._language(record, ident)
        if language is None:
            return None
        code = next((record[f] for f in self.code_fields if f in record), None)
        if not isinstance(code, str):
            fields = "/".join(self.code_fields)
            skip("bad_record", ident, f"no {fields} field" if code is None else "code is not a string")
            return None
        problem = text_problem(code)
        if problem is not None:
            skip(problem[0], ident, problem[1])
            return None
        if ident in self.seen:
            skip("duplicate_id", ident, source)
            return None
        self.seen.add(ident)
        return Snippet(id=ident, language=language, code=code, source=source)

    def _language(self, record: dict, ident: str) -> str | None:
        named = record.get("language")
        if named is None:
            if self.default_language is None:
                self.counter.skip("bad_record", ident, "no language field and no language given")
            return self.default_language
        try:
            language = canonical_language(str(named))
        except UnknownLanguageError:
            self.counter.skip("wrong_language", ident, f"{named!r} has no grammar")
            return None
        if self.language is not None and language != self.language:
            self.counter.skip("wrong_language", ident, f"{language}, not {self.language}")
            return None
        return language


def _record_id(record: dict) -> str | None:
    for field in ID_FIELDS:
        value = record.get(field)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".jsonl", ".json", ".ndjson"):
        name = name.removesuffix(suffix)
    return name

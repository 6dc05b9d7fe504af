"""The unit every later stage consumes (`Snippet`), and the tally of what a run skipped and why.

Loaders and filters never drop a row silently: each drop goes to a `SkipCounter` under one of
the reasons in `SKIP_REASONS`, with a few example ids, and `SkipCounter.report()` freezes the
tally into a `DatasetReport` for the run's summary.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from codeprobe.errors import InputError
from codeprobe.syntax.languages import canonical_language

log = logging.getLogger("codeprobe.datasets")

# Why a row or a function can be dropped. Loaders use the first group, filters the second.
SKIP_REASONS: Mapping[str, str] = MappingProxyType(
    {
        "not_json": "a JSON-lines row that is not valid JSON",
        "bad_record": "a row without a usable code field, id or language",
        "invalid_utf8": "bytes that are not UTF-8 (or text that cannot be encoded as UTF-8)",
        "empty": "an empty or whitespace-only row or function",
        "binary": "NUL or control characters: binary data, not code",
        "wrong_language": "a row in another language than asked for, or in one without a grammar",
        "duplicate_id": "a row whose id an earlier row already used",
        "no_body": "a declaration without a body (abstract or interface method, external func)",
        "unreadable": "a source file that cannot be read",
        "file_too_large": "a source file over the loader's size limit",
        "parse_error": "code with ERROR or MISSING nodes",
        "too_long": "code over a length limit (characters, model subwords or code tokens)",
        "duplicate": "code equal to an earlier snippet's, up to whitespace",
        "not_sampled": "left out by deterministic sampling",
    }
)


@dataclass(frozen=True, slots=True)
class Snippet:
    """One function (or method) of a dataset.

    Attributes:
        id: stable identifier, unique within its dataset: the record's own id, or a path, a
            qualified name and a line (`json/decoder.py::JSONDecoder.decode:332`). Results are
            keyed by it, and sampling and splitting hash it.
        language: canonical language name (see `codeprobe.syntax.known_languages`); any alias
            given is canonicalised.
        code: the source text.
        source: where it came from, for people: `train.jsonl:12`, `cosqa-dev.json#17`,
            `/path/to/file.py:40`.

    Raises:
        InputError: an empty or non-string id. UnknownLanguageError: no grammar for `language`.
    """

    id: str
    language: str
    code: str
    source: str

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise InputError(f"a snippet id must be a non-empty string, not {self.id!r}")
        if not isinstance(self.code, str):
            raise InputError(f"snippet {self.id}: code must be a string, not {type(self.code).__name__}")
        object.__setattr__(self, "language", canonical_language(self.language))


@dataclass(frozen=True)
class DatasetReport:
    """What a dataset run read, kept and skipped (a snapshot: its dicts are copies, and it
    pickles, so it can travel between pipeline tasks).

    Attributes:
        read: rows (or extracted functions, or unusable source files) the loaders considered.
        kept: snippets that came out of the last stage; `read == kept + n_skipped` once the
            stream has been consumed.
        skipped: count per reason (keys from `SKIP_REASONS`), only reasons that occurred.
        examples: per reason, the first few ids skipped for it, with the detail when there is
            one (`"x.jsonl:3 (syntax error at line 1, column 5)"`).
    """

    read: int
    kept: int
    skipped: dict[str, int]
    examples: dict[str, tuple[str, ...]]

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        """A few lines for people: totals, then one line per reason, most frequent first."""
        lines = [f"read {self.read}, kept {self.kept}, skipped {self.n_skipped}"]
        for reason, count in sorted(self.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
            example = f"; e.g. {', '.join(self.examples[reason])}" if self.examples.get(reason) else ""
            lines.append(f"  {reason}: {count} ({SKIP_REASONS[reason]}){example}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain JSON-serialisable form."""
        return {
            "read": self.read,
            "kept": self.kept,
            "skipped": dict(self.skipped),
            "examples": {k: list(v) for k, v in self.examples.items()},
        }


class SkipCounter:
    """Mutable tally shared by the loader and the filters of one run.

    Loaders call `count_read()` once per row, extracted function or unusable file they consider;
    every stage calls `skip()` for each one it drops. Stages are lazy generators, so whatever the
    last stage has yielded is exactly `read - skipped`: `report()` needs nothing from the consumer.
    """

    def __init__(self, max_examples: int = 3):
        self.max_examples = max_examples
        self.n_read = 0
        self._counts: Counter[str] = Counter()
        self._examples: dict[str, list[str]] = {}

    def count_read(self, n: int = 1) -> None:
        self.n_read += n

    def skip(self, reason: str, snippet_id: str, detail: str | None = None) -> None:
        """Record one dropped row. `reason` must be a key of `SKIP_REASONS`."""
        if reason not in SKIP_REASONS:
            raise ValueError(f"unknown skip reason {reason!r}; known: {', '.join(SKIP_REASONS)}")
        self._counts[reason] += 1
        examples = self._examples.setdefault(reason, [])
        if len(examples) < self.max_examples:
            examples.append(f"{snippet_id} ({detail})" if detail else snippet_id)
        log.debug("skipped %s: %s%s", snippet_id, reason, f" ({detail})" if detail else "")

    @property
    def counts(self) -> dict[str, int]:
        """Skips per reason so far (a copy)."""
        return dict(self._counts)

    @property
    def n_skipped(self) -> int:
        return sum(self._counts.values())

    def report(self) -> DatasetReport:
        """Freeze the tally so far."""
        return DatasetReport(
            read=self.n_read,
            kept=self.n_read - self.n_skipped,
            skipped=dict(self._counts),
            examples={k: tuple(v) for k, v in self._examples.items()},
        )


def text_problem(code: str) -> tuple[str, str | None] | None:
    """Why `code` cannot become a snippet's code, as (reason, detail), or None if it can.

    Cheap checks every loader applies before building a `Snippet`: whitespace only, text that
    cannot be encoded as UTF-8 (lone surrogates from undecodable bytes or JSON escapes), NUL.
    """
    if not code.strip():
        return ("empty", None)
    try:
        code.encode("utf-8")
    except UnicodeEncodeError as err:
        return ("invalid_utf8", f"at character {err.start}")
    if "\x00" in code:
        return ("binary", f"NUL at character {code.index(chr(0))}")
    return None

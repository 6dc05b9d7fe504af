"""Typed errors. Every failure codeprobe reports on bad input is a `CodeprobeError`.

They subclass `ValueError` where the input is at fault, so callers that already catch
`ValueError` keep working, and carry a one-line message fit for a CLI.
"""

from __future__ import annotations


class CodeprobeError(Exception):
    """Base class of every error codeprobe raises on purpose."""


class InputError(CodeprobeError, ValueError):
    """The input (code, file, dataset row) cannot be used; the message says why."""


class EmptyCodeError(InputError):
    """The code is empty or whitespace only."""


class InvalidSourceError(InputError):
    """The code is not text: invalid UTF-8, or binary data."""


class UnknownLanguageError(InputError, KeyError):
    """No grammar is registered under that language name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CodeParseError(InputError):
    """Strict parsing found ERROR or MISSING nodes; `issues` locates each of them."""

    def __init__(self, message: str, issues: tuple = ()):  # tuple[ParseIssue, ...]
        super().__init__(message)
        self.issues = issues


class DatasetError(InputError):
    """A dataset cannot be read at all (missing, unknown format, no usable language): raised up front."""


class TooLargeError(InputError):
    """The requested result would not fit in memory (e.g. an n x n matrix for huge n)."""


class ModelLoadError(CodeprobeError, RuntimeError):
    """A model or tokenizer cannot be loaded (missing, offline, unsafe, unsupported)."""


class AlignmentError(InputError):
    """Subwords and code tokens cannot be aligned (e.g. a tokenizer without offsets)."""


class DiskFullError(CodeprobeError, OSError):
    """The disk (or quota) filled while codeprobe wrote a file or folder: the message names the
    folder, about how much more the step needed and what is free. Not the input's fault: the CLI
    exits with status 74 (EX_IOERR); a rerun after freeing space resumes."""

    exit_status = 74

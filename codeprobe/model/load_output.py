"""What transformers prints while it loads a model, kept off the terminal: its load report, log
messages, warnings and progress bars are captured (`quiet_loading`), logged at DEBUG level under
`codeprobe.model`, and boiled down to one line for an error message (`report_summary`)."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("codeprobe.model")

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# A row of transformers' load report: "key | STATUS | details".
_REPORT_ROW = re.compile(r"^\s*([^|\n]+?)\s*\|\s*(MISSING|UNEXPECTED|MISMATCH|CONVERSION|ERROR)\b", re.MULTILINE)


class Captured(logging.Handler):
    """Keeps the log records transformers emits during a load instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        """The captured messages, without terminal colour codes."""
        return [_ANSI.sub("", record.getMessage()) for record in self.records]


@contextmanager
def quiet_loading() -> Iterator[Captured]:
    """Keep transformers' load report, log messages, warnings and progress bars off the terminal
    during a load; they are captured (see `report_summary`) and logged at DEBUG level under
    `codeprobe.model`. The user's settings are restored afterwards."""
    from transformers.utils import logging as hf_logging

    root = hf_logging.get_logger()  # the library's root logger: every transformers logger ends here
    handlers, propagate = root.handlers[:], root.propagate
    captured = Captured()
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    root.handlers, root.propagate = [captured], False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield captured
    finally:
        root.handlers, root.propagate = handlers, propagate
        if was_enabled:
            hf_logging.enable_progress_bar()
        for message in captured.messages():
            log.debug("transformers: %s", message)
        for w in caught:
            log.debug("warning while loading: %s", w.message)


def report_summary(captured: Captured) -> str:
    """One line out of transformers' load report: per problem (missing, unexpected, wrong shape,
    ...) its first row (rows group layers, e.g. `encoder.layer.{0, 1}.x`) and how many more;
    empty when there was no report."""
    counts: dict[str, list[str]] = {}
    for message in captured.messages():
        for key, status in _REPORT_ROW.findall(message):
            counts.setdefault(status, []).append(key)
    names = {"MISMATCH": "wrong shape", "CONVERSION": "conversion failed"}
    return "; ".join(
        f"{names.get(status, status.lower())}: {keys[0]}" + (f" and {len(keys) - 1} more" if len(keys) > 1 else "")
        for status, keys in counts.items()
    )


def one_line(text: str) -> str:
    """The first non-blank line of `text`, without terminal colour codes."""
    lines = [line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
    return lines[0] if lines else ""

"""Progress bars for long loops (extraction, scoring, probe training, a run), over tqdm.

A bar is drawn on standard error only when standard error is a terminal: in a pipe, a log file,
CI or a test, nothing is written. `TQDM_DISABLE=1` in the environment turns every bar off.
Inside a run of the pipeline only the run's own bars are drawn: `outer_only()` mutes the
library's inner bars, whose threads would otherwise redraw over each other.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import ContextDecorator
from typing import TypeVar

T = TypeVar("T")

_LOCK = threading.Lock()
_OUTER = [0]  # open `outer_only` blocks, process-wide (a run's tasks run in worker threads)


def progress(
    iterable: Iterable[T],
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    inner: bool = True,
    file=None,
) -> Iterator[T]:
    """Iterate `iterable` with a progress bar on `file` (default: standard error).

    Args:
        total: number of items when `iterable` has no len() (a generator); None = unknown.
        desc: the bar's label, e.g. "CAT: extracting".
        unit: what one item is ("snippet", "batch", "epoch").
        inner: a library loop (muted under `outer_only`); False for a run's own bar.
        file: the stream to draw on; no bar unless it is a terminal.
    Returns:
        An iterator over the same items, in order.
    """
    stream = sys.stderr if file is None else file
    disabled = os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")
    if disabled or (inner and _OUTER[0] > 0) or not _is_tty(stream):
        return iter(iterable)
    from tqdm import tqdm

    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    return iter(
        tqdm(
            iterable, total=total, desc=desc, unit=unit, file=stream, leave=not inner, dynamic_ncols=True, disable=None
        )
    )


class outer_only(ContextDecorator):
    """Within the block (or the decorated function), only bars made with `inner=False` are
    drawn. Holds no state of its own, so a decorated function stays picklable (Dask)."""

    def __enter__(self) -> outer_only:
        with _LOCK:
            _OUTER[0] += 1
        return self

    def __exit__(self, *exc) -> bool:
        with _LOCK:
            _OUTER[0] -= 1
        return False


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False

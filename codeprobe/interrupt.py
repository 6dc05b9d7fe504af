"""Stopping a run on Ctrl-C or SIGTERM: one process-wide request to stop, which long loops check.

Python runs signal handlers in the main thread only, but a run's work happens in other threads
(the Prefect flow's task runner, which on its way out waits for the tasks it runs). A
KeyboardInterrupt in the main thread alone would leave them computing every remaining step. So
stopping is cooperative: `request_stop()` sets one event, and the loops that run long (the
model's batch loop, the probes' training batches, the start of each pipeline step) call
`check_interrupted()`, which raises `Interrupted` once the event is set. Each thread thus stops
within one batch. Whatever it was writing is dropped, never counted as done: outputs are written
atomically (`codeprobe.files.write_atomic`) and a step counts as done only by the key recorded
inside its output, so a rerun resumes from the finished steps.

Who sets the event:
- `handle_signals()`, which `codeprobe run` installs: the first SIGINT or SIGTERM sets it and
  raises `Interrupted` in the main thread; a second one exits at once (status 128 + signal),
  for a run that does not stop soon enough.
- `interruptible()`, around the flow's body: any KeyboardInterrupt or other non-`Exception`
  (Prefect's own SIGTERM handler raises `TerminationSignal`, a BaseException) that leaves the
  body sets it, so the task threads stop whoever received the signal (`python -m flows...`, a
  deployment's flow run, a library caller).

`Interrupted` subclasses KeyboardInterrupt, so no `except Exception` on the way swallows it and
whatever already handles Ctrl-C handles it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_STOP = threading.Event()
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list[int] = []  # the signals `handle_signals` has received, in order


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop (Ctrl-C, SIGTERM); `signum` is the signal, None if not known."""

    def __init__(self, signum: int | None = None) -> None:
        super().__init__(signal.Signals(signum).name if signum else "stop requested")
        self.signum = signum


def request_stop() -> None:
    """Ask every thread of this process to stop at its next `check_interrupted()`."""
    _STOP.set()


def stop_requested() -> bool:
    """Whether a stop was requested (and not cleared since)."""
    return _STOP.is_set()


def clear_stop() -> None:
    """Forget an earlier stop request and the signals received: the next run of this process
    (a notebook, a test, a second CLI invocation) starts afresh."""
    _STOP.clear()
    _received.clear()


def check_interrupted() -> None:
    """Raise `Interrupted` if a stop was requested. Cheap (one flag read): call it once per batch
    in loops that may run for minutes."""
    if _STOP.is_set():
        raise Interrupted(_received[0] if _received else None)


def stop_signal() -> int | None:
    """The first signal `handle_signals` received, or None."""
    return _received[0] if _received else None


def exit_status(default: int = signal.SIGINT) -> int:
    """The shell's status for a process ended by the signal received: 128 + signal (130 for
    SIGINT, 143 for SIGTERM); `default` when none was received (an interrupt raised otherwise)."""
    return 128 + int(stop_signal() or default)


def _handler(signum: int, frame) -> None:
    if _received:  # the second signal: the user does not want to wait for the threads
        sys.stderr.write(f"codeprobe: {signal.Signals(signum).name} again: stopping at once\n")
        sys.stderr.flush()
        os._exit(128 + signum)
    _received.append(signum)
    request_stop()
    raise Interrupted(signum)


@contextmanager
def handle_signals() -> Iterator[None]:
    """Within the block, the first SIGINT or SIGTERM requests a stop and raises `Interrupted` in
    the main thread; a second exits at once with status 128 + signal (no cleanup but the OS's:
    a temporary Prefect server started by `codeprobe.pipeline.server` watches for this process's
    end and stops itself). A stale stop request is cleared on entry; the former handlers come
    back on exit. Outside the main thread (where Python allows no handler) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    clear_stop()
    before = {s: signal.signal(s, _handler) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


@contextmanager
def interruptible() -> Iterator[None]:
    """Run a block whose work other threads share (a flow's body): a KeyboardInterrupt, SystemExit
    or other BaseException that is not an `Exception` (Prefect's `TerminationSignal`) leaving it
    requests a stop, so those threads end within a batch instead of finishing their steps. A
    stop request left from an earlier block is cleared on entry unless a signal was received."""
    if not _received:
        _STOP.clear()
    try:
        yield
    except BaseException as err:
        if not isinstance(err, Exception):
            request_stop()
        raise

"""Overlap CPU preparation with model work: compute the next items of a stream in a background
thread while the caller works on the current one.

Parsing (tree-sitter), distance kernels (numba, no GIL), tokenisation (Rust) and torch's forward
pass all release the GIL for most of their time, so a single worker thread keeps the model fed:
on a GPU the model no longer waits for the CPU between batches.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()


def prefetched(items: Iterable[T], fn: Callable[[T], R], depth: int = 1) -> Iterator[R]:
    """`map(fn, items)`, with up to `depth` results computed ahead in one background thread.

    Results come in order. An exception raised by `fn` (or by iterating `items`) is re-raised
    in the caller at the position where it occurred. Closing the returned generator early stops
    the worker after its current item.
    """
    out: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                out.put((True, fn(item)))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, re-raised there
            out.put((False, err))
            return
        out.put((True, _DONE))

    worker = threading.Thread(target=work, name="codeprobe-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            ok, value = out.get()
            if not ok:
                raise value
            if value is _DONE:
                return
            yield value
    finally:
        stop.set()
        while worker.is_alive():  # unblock a worker waiting on a full queue
            try:
                out.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.01)

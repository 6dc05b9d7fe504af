"""Overlap CPU work: compute the next items of a stream in a background thread while the caller
works on the current one (`prefetched`), or map a stream over all cores (`threaded_map`).

Parsing (tree-sitter), distance kernels (numba, no GIL), tokenisation (Rust), numpy's selection
and reductions, and torch's forward pass all release the GIL for most of their time, so a single
worker thread keeps the model fed (on a GPU the model no longer waits for the CPU between
batches), and threads score samples side by side.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import chain, islice, repeat, takewhile
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


def windows(items: Iterable[T], first: int, size: int) -> Iterator[list[T]]:
    """`items` in lists of `first` items, then of `size`: a small first window lets the model
    start after little preparation, while later windows are large enough to bucket by length."""
    it = iter(items)
    return takewhile(bool, (list(islice(it, n)) for n in chain([first], repeat(size))))


def threaded_map(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None) -> Iterator[R]:
    """`map(fn, items)` on `workers` threads (default: one per CPU), results in order.

    `items` is read lazily in the caller's thread, at most 2 x `workers` ahead of the results,
    so a long stream is never held whole. An exception raised by `fn` is re-raised at its item.
    """
    workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="codeprobe-map") as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

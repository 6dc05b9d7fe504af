"""The background prefetcher keeps order, re-raises where a failure happened, and stops early."""

from __future__ import annotations

import threading

import pytest

from codeprobe.prefetch import prefetched


def test_results_in_order_computed_in_another_thread():
    threads = []

    def square(x):
        threads.append(threading.current_thread().name)
        return x * x

    assert list(prefetched(range(50), square, depth=3)) == [x * x for x in range(50)]
    assert set(threads) == {"codeprobe-prefetch"}


def test_an_error_surfaces_after_the_results_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("bad item")

    it = prefetched(items(), lambda x: x)
    assert [next(it), next(it)] == [1, 2]
    with pytest.raises(ValueError, match="bad item"):
        next(it)


def test_closing_early_stops_the_worker():
    seen = []
    it = prefetched(range(10_000), seen.append, depth=1)
    next(it)
    it.close()
    assert len(seen) < 10

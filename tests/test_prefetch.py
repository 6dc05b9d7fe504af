"""The background prefetcher keeps order, re-raises where a failure happened, and stops early."""

from __future__ import annotations

import threading

import pytest

from codeprobe.prefetch import prefetched, threaded_map, windows


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


def test_threaded_map_keeps_order_and_reads_lazily():
    read = []

    def items():
        for x in range(100):
            read.append(x)
            yield x

    out = threaded_map(lambda x: x * x, items(), workers=3)
    assert next(out) == 0
    assert len(read) <= 7  # 2 x workers ahead, plus the one being submitted
    assert [0, *out] == [x * x for x in range(100)]


def test_threaded_map_reraises_at_the_failing_item():
    def fn(x):
        if x == 5:
            raise ValueError("bad 5")
        return x

    out = threaded_map(fn, range(10), workers=2)
    assert [next(out) for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="bad 5"):
        next(out)


def test_windows_start_small():
    assert [len(w) for w in windows(range(50), 4, 16)] == [4, 16, 16, 14]
    assert list(windows([], 4, 16)) == []
    assert [x for w in windows(iter(range(7)), 2, 3) for x in w] == list(range(7))

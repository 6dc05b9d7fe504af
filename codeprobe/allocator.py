"""Keep a long run's memory from growing with heap fragmentation (glibc only).

A probing run allocates and frees arrays of every size, snippet after snippet (attention and
hidden states of each batch, distance matrices, pooled outputs), in two threads (the prefetcher
parses while the model runs). glibc serves most of them from its arenas, whose freed chunks
fragment and are rarely returned to the system, so the peak resident size creeps up with the
number of snippets. With glibc's mmap threshold pinned at 1 MiB (what the environment variable
MALLOC_MMAP_THRESHOLD_=1048576 does), every large array gets its own mapping and goes back to
the system when freed; measured in `benchmarks/bench_mainjob.py --memory` (see the README).

`limit_heap_growth` is called by codeprobe's entry points (the CLI, the deployment); a library
user can call it, or set the environment variable, before a long run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
MMAP_THRESHOLD = 1 << 20  # bytes
ENV = "MALLOC_MMAP_THRESHOLD_"


def limit_heap_growth() -> bool:
    """Pin glibc's mmap threshold at 1 MiB for this process.

    Returns:
        True if it was set; False on another C library or platform, or when the user already
        chose a threshold through MALLOC_MMAP_THRESHOLD_ (theirs is kept).
    """
    if not sys.platform.startswith("linux") or ENV in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):  # not glibc: no mallopt
        return False

"""Keep a long run's memory flat without the kernel zero-filling every large array again
(glibc only).

A probing run allocates and frees arrays of every size, batch after batch and in several
threads: the model's activations and attention weights (tens of MB each at batch 16 x 256
subwords, several per layer), pooled outputs, distance matrices, scores. glibc's defaults give
every thread an arena of its own (up to 8 per core) whose freed chunks stay resident and
fragment, so the peak resident size creeps up with the number of snippets. Pinning glibc's
mmap threshold at 1 MiB (what codeprobe's entry points did before) gives every large array a
mapping of its own, returned when freed: flat, but the kernel then zero-fills every page of
every such array, batch after batch; a third of the main job's CPU time was system time.

`limit_heap_growth` sets glibc's allocator instead so that freed memory is reused:

- one arena for all threads (M_ARENA_MAX), so what the model's thread frees, the scoring
  threads reuse, and the other way round;
- arrays up to 64 MiB from that arena (M_MMAP_THRESHOLD), so each batch reuses the pages the
  last one freed; larger ones (AST-Probe's gathered training arrays) get mappings of their own:
  from the arena, they fragmented it (the main job's peak was 3.4 GB with a 256 MiB limit,
  2.4 GB with 64 MiB, 2.0 GB with the old 1 MiB threshold, at 1,000 snippets);
- up to 256 MiB free at the arena's top kept (M_TRIM_THRESHOLD), not handed back after every
  batch only to be faulted in again by the next.

`release_free_memory` (malloc_trim) returns the free pages inside the arena, which that arena
would otherwise keep resident as it fragments; the extractor calls it between windows of
batches. Measured in `benchmarks/bench_mainjob.py` (`codeprobe run` at two sizes, and
`--memory --limit-heap`; see the README).

The entry points (the CLI, the deployment) call `limit_heap_growth` before any work; a library
user can call it, or set glibc's MALLOC_* variables, before a long run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from functools import cache

# mallopt's parameter numbers, from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

# bytes: arrays up to this size come from the arena (a batch's attention tensors, ~50 MB at batch 16
# x 256 subwords); larger ones (AST-Probe's gathered training arrays) get mappings of their own,
# which would otherwise fragment the one arena
HEAP_LIMIT = 64 << 20
TOP_KEPT = 256 << 20  # bytes: as much free kept at the arena's top, not handed back after every batch
SETTINGS = ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, HEAP_LIMIT), (M_TRIM_THRESHOLD, TOP_KEPT))
# The user's own choice of any of these (environment variables glibc reads at start) is kept.
ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_ARENA_MAX", "MALLOC_TOP_PAD_")


_SET = False  # whether limit_heap_growth set this process's allocator


@cache
def _glibc():
    """glibc's handle, or None on another C library or platform."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - not glibc: no mallopt
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def limit_heap_growth() -> bool:
    """Set glibc's allocator for a long run in this process (see the module doc): one arena,
    arrays up to 64 MiB from it, up to 256 MiB free kept at its top. Call it before the run
    starts its threads.

    Returns:
        True if it was set; False on another C library or platform, or when the user already
        chose through glibc's MALLOC_* variables or GLIBC_TUNABLES (theirs is kept).
    """
    global _SET
    libc = _glibc()
    if libc is None or any(k in os.environ for k in ENV) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    _SET = all(bool(libc.mallopt(param, value)) for param, value in SETTINGS)
    return _SET


def release_free_memory() -> None:
    """Where `limit_heap_growth` set the allocator, hand its free pages back to the system
    (glibc's malloc_trim), so that a long run's resident size stays what it uses however its
    arena fragments; otherwise nothing. Costs the zero-filling of what is used again, so call
    it between large units of work (the extractor: between windows of batches), not per
    array."""
    if _SET:
        _glibc().malloc_trim(0)

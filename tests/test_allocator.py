"""The entry points' allocator setting: applied on glibc, never over the user's own choice, and
freed memory reused rather than faulted in again."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CHILD = """
import os, sys
from codeprobe.allocator import limit_heap_growth
print(limit_heap_growth())
"""

# Faults of allocating, filling and freeing a 48 MiB buffer (a batch's attention tensor at batch 16
# x 256 subwords is about 50 MB; glibc's default maps anything over 32 MiB afresh) once, then 10 times more.
REUSE_CHILD = """
import ctypes, resource, sys
from codeprobe.allocator import limit_heap_growth, release_free_memory
if sys.argv[1] == "set":
    assert limit_heap_growth()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 48 << 20
def cycle():
    p = libc.malloc(size)
    ctypes.memset(p, 1, size)
    libc.free(p)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
f0 = faults(); cycle(); f1 = faults()
for _ in range(10):
    cycle()
f2 = faults()
release_free_memory()
print(f1 - f0, f2 - f1)
"""

glibc_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only"
)


def run_child(env_extra: dict[str, str], child: str = CHILD, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-c", child, *args], capture_output=True, text=True, env=env, check=True
    ).stdout.strip()


@glibc_only
def test_setting_is_applied_unless_the_user_chose_one():
    assert run_child({}) == "True"
    assert run_child({"MALLOC_MMAP_THRESHOLD_": "65536"}) == "False"
    assert run_child({"MALLOC_ARENA_MAX": "4"}) == "False"
    assert run_child({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}) == "False"


@glibc_only
def test_freed_large_buffers_are_reused_not_faulted_in_again():
    first, again = map(int, run_child({}, REUSE_CHILD, "set").split())
    assert first > 10_000  # 48 MiB of 4 KiB pages, faulted in once
    assert again < first // 10  # ten more cycles reuse them
    # glibc's own default for such a size: a fresh mapping, faulted in every time
    first, again = map(int, run_child({}, REUSE_CHILD, "default").split())
    assert again > 5 * first

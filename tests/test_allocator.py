"""The entry points' allocator setting: applied on glibc, never over the user's own choice."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = """
import os, sys
from codeprobe.allocator import limit_heap_growth
print(limit_heap_growth())
"""


def run_child(env_extra: dict[str, str]) -> str:
    import os

    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, check=True
    ).stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_threshold_is_pinned_unless_the_user_chose_one():
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert run_child({}) == "True"
    assert run_child({"MALLOC_MMAP_THRESHOLD_": "65536"}) == "False"

"""Progress bars draw on a terminal only, and only the run's own bars inside a run."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import termios

from codeprobe.progress import outer_only, progress


def drawn(run) -> str:
    """What `run(stream)` writes to a pseudo-terminal."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 120 columns
    try:
        with os.fdopen(follower, "w", closefd=False) as stream:
            run(stream)
            stream.flush()
        os.set_blocking(leader, False)
        out = b""
        try:
            while chunk := os.read(leader, 65536):
                out += chunk
        except BlockingIOError:
            pass
        return out.decode("utf-8", "replace")
    finally:
        os.close(leader)
        os.close(follower)


def test_a_terminal_gets_a_bar_and_the_items_pass_through():
    items = []
    text = drawn(lambda f: items.extend(progress(range(7), desc="scoring", unit="snippet", file=f)))
    assert items == list(range(7))
    assert "scoring:" in text and "/7 [" in text


def test_no_bar_off_a_terminal_or_when_disabled(monkeypatch):
    stream = io.StringIO()
    assert list(progress(iter("abc"), desc="x", file=stream)) == ["a", "b", "c"]
    assert stream.getvalue() == ""
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert drawn(lambda f: list(progress(range(3), desc="quiet", file=f))) == ""


def test_outer_only_mutes_library_bars():
    def run(f):
        with outer_only():
            list(progress(range(3), desc="inner-bar", file=f))
            list(progress(range(3), desc="outer-bar", inner=False, file=f))
        list(progress(range(3), desc="after-run", file=f))

    text = drawn(run)
    assert "inner-bar" not in text and "outer-bar" in text and "after-run" in text

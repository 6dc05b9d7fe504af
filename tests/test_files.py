"""The atomic writer: what it writes is readable as a plain `open` would make it."""

from __future__ import annotations

import os
import stat

from codeprobe.files import temporary_dir, write_atomic, write_json


def test_written_files_and_folders_follow_the_umask(tmp_path):
    """mkstemp and mkdtemp make private files (0600) and folders (0700); a run's results must be
    readable by whoever the umask lets read a plain file (a colleague, a web server)."""
    old = os.umask(0o022)
    try:
        text = write_atomic(tmp_path / "report.md", "# a report\n")
        data = write_json(tmp_path / "summary.json", {"a": 1}, record=True)
        folder = temporary_dir(tmp_path / "store")
    finally:
        os.umask(old)
    assert stat.S_IMODE(text.stat().st_mode) == 0o644
    assert stat.S_IMODE(data.stat().st_mode) == 0o644
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert text.read_text() == "# a report\n"

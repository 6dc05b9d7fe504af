"""Session-wide test setup: make the helper modules in tests/ importable."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shared_data import shared_path  # noqa: E402


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return shared_path()

"""Paths to ../shared and small samples of real code, for tests (import from here, not from
conftest: several conftest modules exist, and they share one module name)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is missing: ../shared must sit beside the repository")
    return path


@cache
def cosqa_functions() -> tuple[tuple[str, str], ...]:
    """(id, code) of the 604 real Python functions in cosqa-dev.json."""
    rows = json.loads(shared_path("data", "cosqa-dev.json").read_text(encoding="utf-8"))
    return tuple((row["idx"], row["code"]) for row in rows)


@cache
def java_methods(limit: int = 5000) -> tuple[tuple[str, str], ...]:
    """(id, code) of the space-tokenized Java methods (layout lost)."""
    out = []
    with shared_path("data", "csn-java-test-tokens.txt").open(encoding="utf-8") as f:
        for line in f:
            ident, _, code = line.rstrip("\n").partition("\t")
            out.append((ident, code))
            if len(out) >= limit:
                break
    return tuple(out)

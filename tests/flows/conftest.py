"""Fixtures for the pipeline tests: one Prefect test server for the whole session, a tiny
random-weight model, and small real datasets."""

from __future__ import annotations

import json

import pytest
from shared_data import cosqa_functions


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect server for every flow test (starting one takes ~15 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def python_jsonl(tmp_path_factory):
    """24 real CodeSearchNet Python functions as a CodeSearchNet-style JSON-lines file."""
    path = tmp_path_factory.mktemp("data") / "python_small.jsonl"
    rows = [{"id": ident, "code": code} for ident, code in cosqa_functions()[:40]]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path

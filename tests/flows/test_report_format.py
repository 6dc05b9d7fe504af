"""The report's number formats: a paired difference with and without its interval."""

from __future__ import annotations

from codeprobe.pipeline.report.format import difference


def test_a_difference_with_its_interval():
    assert difference({"mean": 0.12, "ci": [0.1, 0.14], "distinguishable": True}) == "+0.120 [+0.100, +0.140]"
    assert difference({"mean": 0.01, "ci": [-0.1, 0.14], "distinguishable": False}).endswith(" n.d.")


def test_a_difference_without_an_interval_is_said_so():
    """Too few samples (one probe seed on a handful of snippets) give no bootstrap interval:
    the report says so instead of failing to format None."""
    assert difference({"mean": 0.12, "ci": [None, None], "distinguishable": None}) == "+0.120 (no interval)"
    assert difference({"mean": 0.12, "ci": None}) == "+0.120 (no interval)"
    assert difference(None) == "n/a"

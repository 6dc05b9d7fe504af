"""A seeded subset of benchmarks/fuzz_syntax.py (the full run, 10,000+ inputs, is not in CI)."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_syntax.py"


@cache
def load_fuzzer():
    spec = importlib.util.spec_from_file_location("fuzz_syntax", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_fuzz_subset_keeps_every_invariant():
    fuzz = load_fuzzer()
    # Generous time bound: CI machines are shared; the full run uses 5 s.
    outcomes, _, violations = fuzz.run(n=300, seed=20240610, time_bound=60.0)
    assert not violations, "\n".join(f"{c.index} {c.mutation} {c.language}: {p}" for c, p in violations[:20])
    assert sum(outcomes.values()) == 300
    # The subset reaches every kind of outcome: clean, broken, wrapped, refused.
    assert {"bare clean", "bare with issues", "wrapped clean", "refused: InvalidSourceError"} <= set(outcomes)
    assert "crashed" not in outcomes


def test_every_mutation_and_language_is_drawn():
    fuzz = load_fuzzer()
    drawn = list(fuzz.cases(600, seed=3))
    assert {c.mutation for c in drawn} == set(fuzz.MUTATIONS)
    assert len({c.language for c in drawn}) == 17

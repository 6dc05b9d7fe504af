"""Slow, obviously-correct reference implementations (Python loops, recursion, networkx), the
way the original research code computed things: the test oracles.

They exist to check the fast paths (tests compare against them) and to measure them
(benchmarks time both). They are not part of the installed package: tests import them as
`oracles` (tests/ is on sys.path, see tests/conftest.py) and the benchmarks add tests/ to
sys.path themselves.
"""

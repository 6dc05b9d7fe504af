"""Slow, obviously-correct reference implementations (Python loops, recursion, networkx), the
way the original research code computed things.

They exist to check the fast paths (tests compare against them) and to measure them
(benchmarks time both). Nothing on a hot path imports this package.
"""

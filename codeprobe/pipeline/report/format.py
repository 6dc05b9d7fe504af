"""Numbers as the reports print them: a value with its interval, a paired difference."""

from __future__ import annotations

from typing import Any


def number(value: float | None) -> str:
    """`0.423`, or `n/a`."""
    return "n/a" if value is None else f"{value:.3f}"


def with_ci(value: float | None, ci: list[float | None] | None) -> str:
    """`0.423 [0.401, 0.447]` (a value and its 95% interval), or `n/a`."""
    if value is None:
        return "n/a"
    if not ci or ci[0] is None:
        return number(value)
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def difference(d: dict[str, Any] | None) -> str:
    """A paired difference `+0.120 [+0.100, +0.140]`, marked `n.d.` (not distinguishable) when
    its interval crosses zero; `+0.120 (no interval)` where too few samples gave none."""
    if not d or d.get("mean") is None:
        return "n/a"
    ci = d.get("ci")
    if not ci or ci[0] is None or ci[1] is None:
        return f"{d['mean']:+.3f} (no interval)"
    text = f"{d['mean']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]"
    return text if d.get("distinguishable") else text + " n.d."


def excludes_zero(ci: list[float | None] | None) -> bool | None:
    """Whether an interval lies wholly on one side of zero (None: no interval)."""
    if not ci or ci[0] is None or ci[1] is None:
        return None
    return bool(ci[0] > 0 or ci[1] < 0)

"""When a score starts to change over training: the onset rule for one score (a method's layer,
hidden state or relation) over a checkpoint series.

The rule, named `RULE` ("first-departure-that-stays"): the onset is the first step s after the
series' first checkpoint s0 at which the paired 95% interval of the per-snippet difference
score(s) - score(s0) excludes 0, such that the interval at every later step excludes 0 on the
same side. Its direction is "up" (the score rose) or "down" (it fell: continued training can lower
a text model's scores). A series without such a step has no onset (`Onset.step` None): an answer,
not a gap.

- The intervals are `codeprobe.uncertainty.paired_difference`: seeded percentile bootstraps of
  the mean per-snippet difference, over the snippets scored at both steps (matched by snippet id:
  `SnippetScores.aligned`; NaN pairs dropped). Each is a 95% interval on its own: not corrected
  for the number of steps or rows compared. Requiring every later step to agree is what keeps a
  transient excursion (a spike that comes back) from counting.
- A departure at the last step counts as an onset at that step (nothing after it contradicts it);
  `Onset.steps_after` is then 0, so a reader can tell an onset that later checkpoints confirm
  from one that only the newest checkpoint shows.
- A step whose interval cannot be computed (fewer than 2 snippets scored at both steps) does not
  depart, so it ends any run of departures before it.
- Duplicated checkpoints (the same weights as an earlier step) are not points of their own:
  their steps are left out (`duplicates`), since repeating a step's scores would confirm it with
  no new evidence.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codeprobe.uncertainty import Interval, paired_difference

RULE = "first-departure-that-stays"
RULE_TEXT = (
    "the onset is the first checkpoint step after the first at which the paired 95% bootstrap interval of the "
    "per-snippet difference to the first checkpoint's score excludes 0, and stays on that side (the interval "
    "excludes 0 with the same sign) at every later checkpoint; the direction is up or down; a departure at the "
    "last checkpoint counts (nothing after it contradicts it); no such step: no onset"
)

UP, DOWN = "up", "down"


@dataclass(frozen=True)
class SnippetScores:
    """One result's per-snippet scores of a method: a value per (snippet, row).

    Attributes:
        ids: the snippets' ids, (n,), unique.
        indices: the rows' indices (layers, hidden states, relation names), (m,), unique.
        values: float (n, m); NaN where a snippet was not scored at a row.

    Raises:
        ValueError: `values` is not (len(ids), len(indices)), or ids or indices repeat.
    """

    ids: tuple[str, ...]
    indices: tuple[Any, ...]
    values: np.ndarray

    def __post_init__(self) -> None:
        if self.values.shape != (len(self.ids), len(self.indices)):
            raise ValueError(
                f"values are {self.values.shape}, expected ({len(self.ids)} snippets, {len(self.indices)} rows)"
            )
        if len(set(self.ids)) != len(self.ids) or len(set(self.indices)) != len(self.indices):
            raise ValueError("snippet ids and row indices must be unique")

    def aligned(self, ids: Sequence[str], index: Any) -> np.ndarray:
        """Row `index`'s values at snippets `ids` (float (len(ids),)): NaN for a snippet this
        result did not score, and everywhere when it has no such row."""
        out = np.full(len(ids), np.nan)
        if index not in self.indices:
            return out
        position = {snippet: i for i, snippet in enumerate(self.ids)}
        at = np.array([position.get(snippet, -1) for snippet in ids], dtype=np.int64)
        found = at >= 0
        out[found] = self.values[at[found], self.indices.index(index)]
        return out


@dataclass(frozen=True)
class Onset:
    """The onset rule's answer for one score over a series.

    Attributes:
        rule: `RULE`.
        reference_step: the first checkpoint's step (what every difference is to).
        step: the onset's step; None: no onset.
        direction: "up" or "down" at the onset; None without one.
        differences: (step, interval of score(step) - score(reference_step)) per later step,
            ascending: what the answer rests on.
    """

    rule: str
    reference_step: int
    step: int | None
    direction: str | None
    differences: tuple[tuple[int, Interval], ...]

    @property
    def at_onset(self) -> Interval | None:
        """The interval at the onset's step (None: no onset)."""
        return next((iv for s, iv in self.differences if s == self.step), None)

    @property
    def steps_after(self) -> int | None:
        """How many later steps confirm the onset (0: it is at the last step); None without one."""
        return None if self.step is None else sum(s > self.step for s, _ in self.differences)

    def as_dict(self) -> dict[str, Any]:
        """For JSON: the answer, and per later step its difference (`Interval.as_dict`)."""
        return {
            "rule": self.rule,
            "reference_step": self.reference_step,
            "step": self.step,
            "direction": self.direction,
            "steps_after": self.steps_after,
            "differences": [{"step": s, **iv.as_dict()} for s, iv in self.differences],
        }


def side(interval: Interval) -> int:
    """+1: the interval lies above 0; -1: below; 0: it contains 0 (or there is none)."""
    return 1 if interval.low > 0 else -1 if interval.high < 0 else 0


def onset(
    steps: Sequence[int],
    scores: np.ndarray,
    *,
    seed: int | tuple[int, ...] = 0,
    duplicates: Collection[int] = (),
) -> Onset:
    """The onset (`RULE`, see the module's doc) of one score over a checkpoint series.

    Args:
        steps: the checkpoints' training steps, strictly ascending; the first is the reference.
        scores: float (len(steps), n_snippets): per step, each snippet's score, the same snippet
            in the same column at every step (`SnippetScores.aligned`); NaN where a snippet was
            not scored.
        seed: seeds the bootstraps (each step's with (*seed, step)), so a rerun gives the same
            intervals.
        duplicates: steps whose weights repeat an earlier step's: left out.

    Returns:
        An `Onset`; with one step left, no onset and no differences.

    Raises:
        ValueError: no step (besides duplicates), steps not strictly ascending, or `scores` not (len(steps), n).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != len(steps):
        raise ValueError(f"scores are {scores.shape}, expected ({len(steps)} steps, n snippets)")
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise ValueError(f"steps must be strictly ascending, got {list(steps)}")
    left_out = set(duplicates)
    keep = [i for i, s in enumerate(steps) if s not in left_out]
    steps = [int(steps[i]) for i in keep]
    scores = scores[keep]
    if not steps:
        raise ValueError("an onset needs at least one step that is not a duplicate")
    seeds = (seed,) if isinstance(seed, int) else tuple(seed)
    differences = tuple(
        (step, paired_difference(scores[i], scores[0], random_state=(*seeds, step)))
        for i, step in enumerate(steps[1:], start=1)
    )
    sides = np.array([side(iv) for _, iv in differences], dtype=np.int64)
    # Walking back from the last step: the run of equal non-zero sides that ends there; its
    # first step is the onset (any earlier departure is contradicted by a later step).
    start = len(sides)
    while start > 0 and sides[start - 1] != 0 and sides[start - 1] == sides[-1]:
        start -= 1
    if start == len(sides):
        return Onset(RULE, steps[0], None, None, differences)
    return Onset(RULE, steps[0], differences[start][0], UP if sides[-1] > 0 else DOWN, differences)

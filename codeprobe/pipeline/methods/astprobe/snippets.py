"""AST-Probe's per-snippet scores over a checkpoint series (`Method.per_snippet`): what the
series' onsets rest on."""

from __future__ import annotations

from typing import Any

import numpy as np

from codeprobe.files import read_json
from codeprobe.onsets import SnippetScores
from codeprobe.pipeline.runfolder import ResultFolder


def seed_mean(points: list[dict]) -> np.ndarray:
    """(n_test,): each test snippet's F1 averaged over the points' seeds (one fitted probe each)."""
    return np.mean([p["test_f1_per_snippet"] for p in points], axis=0)


def per_snippet(folder: ResultFolder, section: dict[str, Any]) -> SnippetScores | None:
    """Each test snippet's F1 per hidden state the section shows (at its rank), averaged over
    seeds as the section's F1 is: a hidden state's test F1 is their mean. A hidden state whose
    probes all diverged has no column. None: no sweep with per-snippet F1 recorded."""
    path = folder.file("hidden_states.json")
    if not path.exists():
        return None
    real = read_json(path)
    shown = [p["hidden_state"] for p in section["hidden_states"]]
    groups: dict[int, list[dict]] = {}
    for p in real["points"]:
        if p["rank"] == section["rank"] and p["hidden_state"] in shown and not p["diverged"]:
            groups.setdefault(p["hidden_state"], []).append(p)
    indices = [h for h in shown if h in groups]
    if not real.get("test_ids") or not indices:
        return None
    values = np.stack([seed_mean(groups[h]) for h in indices], axis=1)
    return SnippetScores(tuple(real["test_ids"]), tuple(indices), values)

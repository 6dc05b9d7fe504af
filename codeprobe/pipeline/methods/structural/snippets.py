"""The structural probes' per-snippet scores over a checkpoint series (`Method.per_snippet`):
what the series' onsets rest on."""

from __future__ import annotations

from typing import Any

import numpy as np

from codeprobe.files import read_json
from codeprobe.onsets import SnippetScores
from codeprobe.pipeline.methods.structural.steps import FILES
from codeprobe.pipeline.runfolder import ResultFolder


def per_snippet(folder: ResultFolder, section: dict[str, Any]) -> SnippetScores | None:
    """Each test snippet's UUAS (the distance probe's, the series curve's score) per hidden
    state the section shows; its mean over the snippets is the section's UUAS. None: no
    distance probe, or no task step recorded."""
    path = folder.file(FILES["task"])
    shown = [r["hidden_state"] for r in section.get("probes", {}).get("distance", {}).get("hidden_states", [])]
    if not path.exists() or not shown:
        return None
    task = read_json(path)
    points = {p["hidden_state"]: p for p in task.get("distance", {}).get("points", [])}
    indices = [h for h in shown if h in points]
    if not task.get("test_ids") or not indices:
        return None
    values = np.array([points[h]["test"]["uuas"] for h in indices], dtype=np.float64).T
    return SnippetScores(tuple(task["test_ids"]), tuple(indices), values)

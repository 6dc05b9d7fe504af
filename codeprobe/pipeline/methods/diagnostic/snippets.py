"""The diagnostic classifiers' per-snippet scores over a checkpoint series (`Method.per_snippet`):
what the series' onsets rest on."""

from __future__ import annotations

from typing import Any

from codeprobe.files import read_json
from codeprobe.onsets import SnippetScores
from codeprobe.pipeline.methods.diagnostic.report import followed
from codeprobe.pipeline.methods.diagnostic.summary import per_snippet_accuracy
from codeprobe.pipeline.runfolder import ResultFolder


def per_snippet(folder: ResultFolder, section: dict[str, Any]) -> SnippetScores | None:
    """Each test snippet's accuracy (its share of tokens labelled right) per hidden state the
    section shows, for the task the series follows (`report.followed`): a hidden state's test
    accuracy is their mean. None: the folder holds no fit of that task."""
    task = next(name for name, t in section["tasks"].items() if t is followed(section))
    path = folder.file(f"{task}.json")
    if not path.exists():
        return None
    fit = read_json(path)
    shown = [r["hidden_state"] for r in section["tasks"][task]["hidden_states"]]
    columns = [fit["hidden_states"].index(h) for h in shown if h in fit["hidden_states"]]
    if not fit.get("test_ids") or not columns:
        return None
    values = per_snippet_accuracy(fit)[:, columns]
    return SnippetScores(tuple(fit["test_ids"]), tuple(fit["hidden_states"][k] for k in columns), values)

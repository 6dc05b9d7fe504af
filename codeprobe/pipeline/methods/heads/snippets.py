"""Attention-head relations' per-snippet scores over a checkpoint series (`Method.per_snippet`):
what the series' onsets rest on."""

from __future__ import annotations

from typing import Any

import numpy as np

from codeprobe.onsets import SnippetScores
from codeprobe.pipeline.methods.heads.steps import SNIPPETS_FILE
from codeprobe.pipeline.runfolder import ResultFolder
from codeprobe.probes.heads.results import SnippetHits


def per_snippet(folder: ResultFolder, section: dict[str, Any]) -> SnippetScores | None:
    """Per test snippet and relation of the headline (its direction, dependent token and first
    k, as the series curve follows), the share of the snippet's scorable edges of the relation
    that the relation's best head (chosen on validation) gets right; NaN where it has none. (A
    relation's score is the share over all its test edges: the edges of a snippet weigh by their
    number there, here each snippet weighs one.) None: no relation scored, or no per-snippet
    hits recorded."""
    path = folder.file(SNIPPETS_FILE)
    h = section["headline"]
    if not path.exists() or not h.get("n_relations"):
        return None
    with np.load(path, allow_pickle=False) as z:
        hits = SnippetHits.from_arrays(z)
    block = next(s for s in section["scores"] if (s["direction"], s["dependent"]) == (h["direction"], h["dependent"]))
    names = [r["relation"] for r in block["relations"] if r["relation"] in hits.names]
    accuracy = hits.accuracy(h["direction"], h["dependent"], h["k"])
    return SnippetScores(hits.sample_ids, tuple(names), accuracy[:, [hits.names.index(n) for n in names]])

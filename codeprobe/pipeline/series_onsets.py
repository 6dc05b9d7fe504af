"""summary.json's `onsets`: per checkpoint series (model spec, language, dataset), per method
with per-snippet scores (`Method.per_snippet`) and per row of its series curve (a layer, a
hidden state, a relation), when its score starts to change (`codeprobe.onsets`)."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from codeprobe.model.checkpoints import series_name
from codeprobe.onsets import onset
from codeprobe.pipeline.registry import methods
from codeprobe.pipeline.runfolder import RunFolder, model_display_name


def series_onsets(
    run: RunFolder, results: list[dict[str, Any]], series: list[dict[str, Any]], seed: int
) -> list[dict[str, Any]]:
    """One record per (series, language, dataset, method, row), for series with at least two
    steps whose results hold the method's per-snippet scores.

    Args:
        results: summary.json's results (a checkpoint's with its `step`).
        series: summary.json's series records (their `duplicates` are no points of their own).
        seed: the run's seed; each row's bootstraps are seeded by (seed, the row's name).

    Returns:
        Records `{series, model, language, dataset, method, index_name, index}` plus
        `Onset.as_dict()` (`rule`, `reference_step`, `step`, `direction`, `steps_after`,
        `differences`), by series, then method in running order, then row.
    """
    duplicates = {r["model"]: [int(step) for step in r.get("duplicates") or {}] for r in series}
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in results:
        if r.get("step") is not None:
            groups.setdefault((r["model"], r["language"], r["dataset"]), []).append(r)
    records = []
    for (spec, language, dataset), group in groups.items():
        group = sorted(group, key=lambda r: r["step"])
        for m in methods():
            if m.per_snippet is None or m.series is None:
                continue
            scored = [
                (r["step"], scores)
                for r in group
                if r.get(m.name)
                and (scores := m.per_snippet(run.results(m.name, r["folder"], language, dataset), r[m.name]))
                is not None
            ]
            if len(scored) < 2:
                continue
            steps = [step for step, _ in scored]
            reference = scored[0][1].ids  # a snippet must be scored at the first step to be compared
            for index in sorted({i for _, scores in scored for i in scores.indices}):
                found = onset(
                    steps,
                    np.stack([scores.aligned(reference, index) for _, scores in scored]),
                    seed=(seed, zlib.crc32(f"{m.name}/{index}".encode())),
                    duplicates=duplicates.get(spec, ()),
                )
                records.append(
                    {
                        "series": model_display_name(series_name(spec)),
                        "model": spec,
                        "language": language,
                        "dataset": dataset,
                        "method": m.name,
                        "index_name": m.series.index_name,
                        "index": index,
                        **found.as_dict(),
                    }
                )
    return records

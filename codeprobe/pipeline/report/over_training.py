"""The report's "Over training" section: what each checkpoint series held (its duplicates, which
have no result and no point of their own, and its skipped checkpoints with their reasons), then
for each series and each method with a series curve, a step x layer heat map and the best
layer's score over the steps with its baselines, and a table; and where summary.json has them,
each row's onset (`codeprobe.onsets`): a table, boxed in the heat map and marked on the curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from codeprobe.model.checkpoints import series_name
from codeprobe.pipeline.registry import SeriesCurve, methods
from codeprobe.pipeline.report.format import difference
from codeprobe.pipeline.report.plots import series_figure
from codeprobe.pipeline.runfolder import model_display_name, slug
from codeprobe.pipeline.summary import UNCERTAINTY_NOTE, series_notes


def series_groups(summaries: list[dict], label_run: bool = False) -> list[tuple[str, list[dict]]]:
    """(label, results by step) per checkpoint series of each run."""
    groups: dict[str, list[dict]] = {}
    for s in summaries:
        for r in s["results"]:
            if r.get("step") is not None:
                label = (
                    f"{model_display_name(series_name(r['model']))}"
                    + (f" ({Path(s['run']).name})" if label_run else "")
                    + f", {r['language']}, {r['dataset']}"
                )
                groups.setdefault(label, []).append({**r, "_run": Path(s["run"]).name})
    return [(label, sorted(rs, key=lambda r: r["step"])) for label, rs in groups.items()]


def series_matrix(results: list[dict], section: str, curve: SeriesCurve) -> tuple[list[int], list[int], np.ndarray]:
    """(steps, indices, scores): scores[i, j] is the score of the row (a layer, a hidden state)
    with index indices[j] at steps[i], NaN where missing. Shape (n_steps, n_indices)."""
    steps = [r["step"] for r in results]
    indices = sorted({row[curve.index] for r in results for row in curve.rows(r[section])})
    scores = np.full((len(steps), len(indices)), np.nan)
    for i, r in enumerate(results):
        for row in curve.rows(r[section]):
            if row.get(curve.score) is not None:
                scores[i, indices.index(row[curve.index])] = row[curve.score]
    return steps, indices, scores


def series_lines(summaries: list[dict], plots: Path, label_run: bool) -> list[str]:
    """The section's Markdown (plots written into `plots`); empty without a series."""
    groups = series_groups(summaries, label_run)
    if not groups:
        return []
    lines = [
        "## Over training (checkpoint series)",
        "",
        "Each checkpoint of a series is probed like a model of its own; the sections above show "
        "each series' last checkpoint. Heat maps: score per (training step, layer) for CAT, per "
        "(training step, hidden state) for AST-Probe; curves: the best one at each step "
        "(AST-Probe: the hidden state chosen on validation; CAT: the layer of highest CAT-score), "
        f"with its baselines. Brackets and bands: {UNCERTAINTY_NOTE}.",
        "",
    ]
    rules = {s["onset_rule"]["name"]: s["onset_rule"]["text"] for s in summaries if s.get("onset_rule")}
    lines += [f"Onsets (rule `{name}`): {text}. {ONSET_NOTE}" for name, text in rules.items()]
    lines += [""] if rules else []
    onsets: dict[tuple[str, str, str, str, str], list[dict]] = {}
    for s in summaries:
        for record in s.get("onsets") or ():
            key = (Path(s["run"]).name, record["model"], record["language"], record["dataset"], record["method"])
            onsets.setdefault(key, []).append(record)
    notes = [note for s in summaries for note in series_notes(s)]
    if notes:  # duplicates (drawn once, at the earlier step) and skipped checkpoints, by series
        lines += [f"- {note}" for note in dict.fromkeys(notes)] + [""]
    for label, results in groups:
        first = results[0]
        name = "-".join(
            [
                slug(series_name(first["model"])),
                first["language"],
                slug(first["dataset"]),
                *([slug(first["_run"])] if label_run else []),
            ]
        )
        lines += [f"### {label}", ""]
        for m in methods():
            done = [r for r in results if r.get(m.name)]
            if not done or m.series is None:
                continue
            curve = m.series
            path = plots / f"series-{name}-{m.name}.png"
            points: list[tuple[int, Any, dict]] = []
            table = []
            for r in done:
                best = curve.best(r[m.name])
                values = curve.values(r[m.name], best) if best else {}
                if best:
                    points.append((r["step"], best[curve.index], values))
                table.append(curve.table_row(r["step"], best, values))
            steps, indices, scores = series_matrix(done, m.name, curve)
            records = onsets.get((first["_run"], first["model"], first["language"], first["dataset"], m.name), [])
            marks = {r["index"]: (r["step"], r["direction"]) for r in records if r["step"] is not None}
            series_figure(path, label, curve, steps, indices, scores, points, marks)
            lines += [f"![{curve.title} over training]({plots.name}/{path.name})", "", *curve.table_header, *table, ""]
            lines += onset_table(records, curve)
    return lines


ONSET_NOTE = (
    "Each interval is a paired 95% bootstrap over the snippets scored at both steps, not corrected for the "
    "number of steps and rows compared; an onset at the last step (0 later steps) is not yet confirmed."
)


def onset_table(records: list[dict], curve: SeriesCurve) -> list[str]:
    """Markdown: per row of a method's series curve, its onset step or "none", the direction,
    the paired difference to the first checkpoint at the onset, how many later steps confirm
    it, and the difference at the last step (what a "none" rests on); empty without records."""
    if not records:
        return []
    first, last = records[0]["reference_step"], records[0]["differences"][-1]["step"]
    lines = [
        f"Onsets of the {curve.title} (`{records[0]['rule']}`, against step {first}; none: no step departs and "
        "stays there):",
        "",
        f"| {curve.index_name} | onset step | direction | at the onset: score - step {first} | later steps "
        f"| at step {last}: score - step {first} |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for r in records:
        by_step = {d["step"]: d for d in r["differences"]}
        at = "" if r["step"] is None else difference(by_step[r["step"]])
        lines.append(
            f"| {r['index']} | {'none' if r['step'] is None else r['step']} | {r['direction'] or ''} | {at} | "
            f"{'' if r['steps_after'] is None else r['steps_after']} | {difference(by_step.get(last))} |"
        )
    return [*lines, ""]

"""The interactive HTML report of one run, or the comparison of several: every result of every
run as one series for `codeprobe.viz.html` (each method's section as its `html_view` shows it,
and the snippet explorer's sample)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codeprobe.files import read_json
from codeprobe.model.checkpoints import series_name
from codeprobe.pipeline.registry import methods
from codeprobe.pipeline.runfolder import RunFolder, model_display_name
from codeprobe.pipeline.summary import (
    TEXT_MODEL_NOTE,
    data_lines,
    is_text_model,
    read_summary,
    run_line,
    series_notes,
)


def run_series(run: RunFolder, *, label_run: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary, one report series per result) of a finished run folder."""
    summary = read_summary(run)
    out = []
    for r in summary.get("results", []):
        label = f"{r['model_name']}, {r['language']}, {Path(r['dataset']).name}"
        if label_run:
            label += f" ({Path(summary.get('run', str(run.root))).name})"
        if isinstance(r.get("step"), int):
            label += f", step {r['step']}"
        s: dict[str, Any] = {
            "label": label,
            "model": r["model_name"],
            "language": r["language"],
            "dataset": r["dataset"],
            "step": r.get("step"),
            "run": summary.get("run"),
        }
        if "checkpoint" in r:  # a checkpoint of a series: the series' steps in one curve per run
            s["series"] = model_display_name(series_name(r["model"]))
            s["model_base"] = s["series"] + (f" ({Path(summary.get('run', str(run.root))).name})" if label_run else "")
        folder = r.get("folder")
        for m in methods():
            if r.get(m.name):
                s[m.name] = m.html_view(run.results(m.name, folder, r["language"], r["dataset"]), r[m.name])
        explorer = run.explorer(folder, r["language"], r["dataset"])
        if explorer.exists():
            payload = read_json(explorer)
            payload.pop("_key", None)
            labels = payload.pop("labels", None)
            if labels and "astprobe" in s:
                s["astprobe"].update(
                    labels=labels["rows"],
                    labels_hidden_state=labels["hidden_state"],
                    labels_snippets=labels["n_snippets"],
                )
            s["explorer"] = payload
        out.append(s)
    return summary, out


def write_report_html(runs: list[Path] | Path, out: Path | None = None) -> Path:
    """Write the interactive report of one run (default RUN/report.html) or the comparison of
    several (default ./comparison.html). Returns its path."""
    from codeprobe.viz.html import report_html, write_html

    runs = [Path(runs)] if isinstance(runs, (str, Path)) else [Path(r) for r in runs]
    folders = [RunFolder(r) for r in runs]
    out = Path(out) if out else (folders[0].report_html if len(runs) == 1 else Path("comparison.html"))
    lines, series, footer, warnings, onsets = [], [], [], [], []
    versions = rule = None
    for run in folders:
        summary, part = run_series(run, label_run=len(runs) > 1)
        series += part
        name = Path(summary.get("run", str(run.root))).name
        onsets += [{**r, "run": name} if len(runs) > 1 else r for r in summary.get("onsets") or ()]
        rule = summary.get("onset_rule") or rule
        lines.append(run_line(summary, code=False))
        if any(is_text_model(r) for r in summary.get("results", [])):
            note = TEXT_MODEL_NOTE.replace("*", "")  # Markdown emphasis
            if note not in warnings:
                warnings.append(note)
        footer += [line for line in series_notes(summary) + data_lines(summary) if line not in footer]
        versions = versions or summary.get("versions")
    if versions:
        footer.append("Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    title = "codeprobe report" if len(runs) == 1 else f"codeprobe comparison of {len(runs)} runs"
    shown = {"rule": rule, "titles": {m.name: m.title for m in methods()}, "records": onsets} if onsets else None
    return write_html(
        report_html(series, title=title, lines=lines, warnings=warnings, footer=footer, onsets=shown), out
    )

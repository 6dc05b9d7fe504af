"""The Markdown report of one run, or the comparison of several: each registered method's section
(with its plots), the checkpoint series over training, the data and the versions."""

from __future__ import annotations

from pathlib import Path

from codeprobe.files import write_atomic
from codeprobe.pipeline.registry import methods
from codeprobe.pipeline.report.over_training import series_lines
from codeprobe.pipeline.runfolder import RunFolder
from codeprobe.pipeline.summary import (
    TEXT_MODEL_NOTE,
    UNCERTAINTY_NOTE,
    data_lines,
    is_last_step,
    is_text_model,
    read_summary,
    run_line,
)


def render_report(runs: list[Path] | Path, out: Path) -> Path:
    """Write a Markdown report of one run, or a comparison of several, with PNG plots in a
    `plots/` folder beside it. Returns the report's path.

    Raises:
        FileNotFoundError: a folder that holds no finished run.
    """
    runs = [runs] if isinstance(runs, (str, Path)) else list(runs)
    summaries = [read_summary(RunFolder(Path(r))) for r in runs]
    out = Path(out)
    plots = out.parent / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    label_run = len(summaries) > 1

    lines = ["# codeprobe report", ""]
    if any(is_text_model(r) for s in summaries for r in s["results"]):
        lines += [f"> {TEXT_MODEL_NOTE}", ""]
    lines += [run_line(s) for s in summaries] + [""]
    for m in methods():
        sections = [
            (label(s, r, label_run), r[m.name])
            for s in summaries
            for r in s["results"]
            if r.get(m.name) and is_last_step(s, r)
        ]  # a series' earlier steps: over training
        if sections:
            body = m.report(sections, plots)
            lines += body[:2] + [f"Brackets: {UNCERTAINTY_NOTE}.", ""] + body[2:]
    lines += series_lines(summaries, plots, label_run)
    data = [line for s in summaries for line in data_lines(s)]
    lines += list(dict.fromkeys(data))
    if summaries[0].get("versions"):
        lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(summaries[0]["versions"].items()))]
    write_atomic(out, "\n".join(lines) + "\n")
    return out


def label(summary: dict, result: dict, label_run: bool) -> str:
    """A result's label in plots and tables: model, language, dataset (and run)."""
    name = result["model_name"] + (f" ({Path(summary['run']).name})" if label_run else "")
    return f"{name}, {result['language']}, {result['dataset']}"

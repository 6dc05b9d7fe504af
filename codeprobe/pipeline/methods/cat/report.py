"""CAT-probing in the Markdown report (CAT-score by layer with both baselines) and over a
checkpoint series (its `SeriesCurve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codeprobe.pipeline.registry import SeriesCurve
from codeprobe.pipeline.report.format import difference, with_ci
from codeprobe.pipeline.report.plots import axes, curve

# What each convention scores (docs/cat.md); a section without one was scored in full.
MASK_NOTES = {
    "causal": "causal: only pairs with the key at or before the query, all a decoder can attend to",
    "full": "full matrix",
}


def report(sections: list[tuple[str, dict[str, Any]]], plots: Path) -> list[str]:
    """The Markdown section: CAT-score by layer with both baselines, and a table per result."""
    with axes(
        plots / "cat_by_layer.png",
        "CAT-score by layer (95% bootstrap bands)",
        "layer (transformer layer, 0-based)",
        "CAT-score",
    ) as ax:
        for label, c in sections:
            color = curve(ax, c["layers"], "layer", "score", "score_ci", marker="o", label=label)
            curve(
                ax,
                c["layers"],
                "layer",
                "random_baseline",
                "random_baseline_ci",
                color,
                ls=":",
                label=f"{label}: random attention",
            )
            curve(
                ax,
                c["layers"],
                "layer",
                "positional_baseline",
                "positional_baseline_ci",
                color,
                ls="--",
                label=f"{label}: positional attention",
            )
    lines = ["## CAT-probing", "", f"![CAT-score by layer]({plots.name}/cat_by_layer.png)", ""]
    for label, c in sections:
        lines += [
            f"**{label}** (types `{c['types']}`, distance `{c['distance']}`, q {c['quantile']}, "
            f"mask `{c.get('mask', 'full')}`: {MASK_NOTES[c.get('mask', 'full')]})",
            "",
            "| layer | CAT-score | random | positional | CAT - positional | samples | skipped |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {row['layer']} | {with_ci(row['score'], row['score_ci'])} | "
            f"{with_ci(row['random_baseline'], row['random_baseline_ci'])} | "
            f"{with_ci(row['positional_baseline'], row['positional_baseline_ci'])} | "
            f"{difference(row['minus_positional'])} | {row['n_used']} | {row['n_skipped']} |"
            for row in c["layers"]
        ]
        lines.append("")
    return lines


def best_row(c: dict) -> dict | None:
    """The layer row with the highest head-mean CAT-score (CAT-probing has no held-out split:
    the best layer is chosen on the scored snippets themselves, as in the paper)."""
    rows = [r for r in c["layers"] if r.get("score") is not None]
    return max(rows, key=lambda r: r["score"]) if rows else None


def _series_row(step: int, best: dict | None, v: dict) -> str:
    b = best or {}
    return (
        f"| {step} | {b.get('layer', 'n/a')} | {with_ci(b.get('score'), b.get('score_ci'))} | "
        f"{with_ci(b.get('random_baseline'), b.get('random_baseline_ci'))} | "
        f"{with_ci(b.get('positional_baseline'), b.get('positional_baseline_ci'))} | "
        f"{difference(b.get('minus_positional'))} |"
    )


SERIES = SeriesCurve(
    title="CAT-score",
    index_name="layer",
    index_axis="transformer layer (0-based)",
    rows=lambda c: c["layers"],
    index="layer",
    score="score",
    best=best_row,
    values=lambda c, best: best,
    curves=(
        ("best layer", "score", "score_ci", "-", "o"),
        ("random attention", "random_baseline", "random_baseline_ci", ":", None),
        ("positional attention", "positional_baseline", "positional_baseline_ci", "--", None),
    ),
    table_header=(
        "| step | best layer | CAT-score | random attention | positional attention | CAT - positional |",
        "|---:|---:|---:|---:|---:|---:|",
    ),
    table_row=_series_row,
)

"""The reports' figures: curves with their 95% bands, and a series' step x row heat map (a row:
a transformer layer, or a hidden state).

Figures are drawn with `matplotlib.figure.Figure` and saved through its own canvas: no pyplot,
no global backend, nothing changed at import.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from codeprobe.files import write_atomic

if TYPE_CHECKING:
    from codeprobe.pipeline.registry import SeriesCurve


@contextmanager
def axes(path: Path, title: str, xlabel: str, ylabel: str, *, legend: bool = True) -> Iterator[Any]:
    """A 7 x 4.2 in figure's axes, saved to `path` (PNG, 120 dpi) when the block ends."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    yield ax
    if legend:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))


def xy(rows: Sequence[dict], x: str, y: str) -> tuple[list, list]:
    """The (x, y) of the rows that have a y."""
    pts = [(r[x], r[y]) for r in rows if r.get(y) is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def band(ax, rows: Sequence[dict], x: str, ci: str, color) -> None:
    """Shade the 95% interval `ci` ([low, high] per row) around a curve."""
    pts = [(r[x], *r[ci]) for r in rows if r.get(ci) and r[ci][0] is not None]
    if pts:
        xs, lo, hi = zip(*pts)
        ax.fill_between(xs, lo, hi, color=color, alpha=0.15, linewidth=0)


def curve(ax, rows: Sequence[dict], x: str, y: str, ci: str, color=None, **style) -> str:
    """Plot `y` against `x` with its 95% band `ci`; returns the line's colour."""
    (line,) = ax.plot(*xy(rows, x, y), color=color, **style)
    band(ax, rows, x, ci, line.get_color())
    return line.get_color()


def series_figure(
    path: Path,
    label: str,
    series: SeriesCurve,
    steps: list[int],
    indices: list[int],
    scores: np.ndarray,
    points: list[tuple[int, int, dict[str, Any]]],
    onsets: dict[Any, tuple[int, str]] | None = None,
) -> None:
    """Two panels: the step x row heat map of `scores` (n_steps, n_indices), and the best row's
    score over steps with its 95% band and baselines (`series.curves`: (legend, key, ci key,
    line style, marker) per curve; the first is the score).

    Args:
        indices: the rows' indices (layers, hidden states: `series.index_name`).
        points: (step, best row's index, values) per step; `values` holds each curve's key and
            ci.
        onsets: {row's index: (onset step, "up" or "down")} for the rows with an onset
            (`codeprobe.onsets`): boxed in the heat map with a triangle of its direction; the
            row followed at the last step gets a vertical line on the curve panel.
    """
    title, name, curves = series.title, series.index_name, series.curves
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(13, 4.6))
    hm, ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    image = hm.imshow(scores.T, origin="lower", aspect="auto", cmap="viridis")
    fig.colorbar(image, ax=hm, label=title)
    hm.set_xticks(range(len(steps)), [str(s) for s in steps], rotation=45 if len(steps) > 8 else 0)
    hm.set_yticks(range(len(indices)), [str(index) for index in indices])
    hm.set_xlabel("training step (checkpoints)")
    hm.set_ylabel(series.index_axis)
    hm.set_title(f"{title} per {name} and step")
    finite = scores[np.isfinite(scores)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0
    for i in range(len(steps)):
        for j in range(len(indices)):
            if np.isfinite(scores[i, j]):
                hm.text(
                    i,
                    j,
                    f"{scores[i, j]:.3f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="black" if scores[i, j] > middle else "white",
                )
    onsets = onsets or {}
    for index, (step, direction) in onsets.items():
        if step in steps and index in indices:
            i, j = steps.index(step), indices.index(index)
            hm.add_patch(Rectangle((i - 0.5, j - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.8))
            hm.plot(i - 0.36, j + 0.3, marker="^" if direction == "up" else "v", color="red", markersize=7)
    if onsets:
        hm.set_title(f"{title} per {name} and step\n(red box: onset, triangle: its direction)")
    for legend, key, ci, style, marker in curves:
        rows = [{"step": step, key: values.get(key), ci: values.get(ci)} for step, _, values in points]
        if xy(rows, "step", key)[0]:
            curve(ax, rows, "step", key, ci, ls=style, marker=marker, label=legend)
    followed = points[-1][1] if points else None
    if followed in onsets:
        step, direction = onsets[followed]
        ax.axvline(step, color="red", ls=":", lw=1.2, label=f"onset of {series.index_name} {followed} ({direction})")
    score_key = curves[0][1]
    for step, index, values in points if series.curve_title is None else ():
        if values.get(score_key) is not None:
            ax.annotate(
                str(index),
                (step, values[score_key]),
                textcoords="offset points",
                xytext=(0, 6),
                fontsize=7,
                ha="center",
            )
    if steps:
        if min(steps) > 0:
            ax.set_xscale("log")
        else:
            ax.set_xscale("symlog", linthresh=1)
        ax.set_xticks(steps, [str(s) for s in steps], rotation=45 if len(steps) > 6 else 0)
        ax.minorticks_off()
        # Explicit limits: an onset line otherwise stretches the autoscaled axis to the left.
        ax.set_xlim(min(steps) / 1.5 if min(steps) > 0 else -0.5, max(steps) * 1.5)
    ax.set_xlabel("training step")
    ax.set_ylabel(title)
    ax.set_title(series.curve_title or f"best {name} over training (labels: the {name}); 95% bands")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.suptitle(label, fontsize=9)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))

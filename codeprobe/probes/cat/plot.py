"""Figure of one snippet's CAT-probing: token attention and tree distance side by side for one
layer, and the per-layer CAT-score curve with both baselines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

_MAX_LABELS = 80  # beyond this, tick labels are unreadable: label every k-th token


def plot_snippet(
    path: str | Path,
    *,
    labels: Sequence[str],
    attention: np.ndarray,
    distance: np.ndarray,
    layer: int,
    scores: np.ndarray,
    random_baseline: np.ndarray,
    positional_baseline: np.ndarray,
    distance_name: str = "U-AST distance",
    title: str = "",
) -> None:
    """Write a PNG to `path`.

    labels: (n,) token texts; attention: (n, n) token attention of `layer` (row = query);
    distance: (n, n) hops; scores, random_baseline, positional_baseline: (L,) per layer.
    """
    from matplotlib.figure import Figure  # its own canvas: no pyplot, the backend is left alone

    n = len(labels)
    fig = Figure(figsize=(19, 6.5))
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 0.9]})
    step = max(1, -(-n // _MAX_LABELS))
    ticks = np.arange(0, n, step)
    shown = [repr(labels[i])[1:-1][:12] for i in ticks]
    for ax, matrix, name, cmap in (
        (axes[0], attention, f"token attention, layer {layer}", "viridis"),
        (axes[1], distance, distance_name, "magma_r"),
    ):
        im = ax.imshow(matrix, cmap=cmap, interpolation="nearest")
        ax.set_title(name)
        ax.set_xticks(ticks, shown, rotation=90, fontsize=6)
        ax.set_yticks(ticks, shown, fontsize=6)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    x = np.arange(len(scores))
    ax = axes[2]
    ax.plot(x, scores, "o-", label="model")
    ax.plot(x, random_baseline, "s--", label="random attention")
    ax.plot(x, positional_baseline, "^--", label="positional exp(-|i-j|)")
    ax.axvline(layer, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("layer")
    ax.set_ylabel("CAT-score")
    ax.set_ylim(0, 1)
    ax.set_xticks(x)
    ax.legend(fontsize=8)
    ax.set_title("CAT-score per layer")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(str(path), dpi=120)

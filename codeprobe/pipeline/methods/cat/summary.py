"""CAT-probing's section of summary.json, and what the HTML page adds to it (the layer x head
map and the type rates, read from the method's files)."""

from __future__ import annotations

from typing import Any

import numpy as np

from codeprobe.files import read_json
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.methods.cat.steps import MEAN_HEAD
from codeprobe.pipeline.report.format import excludes_zero
from codeprobe.pipeline.runfolder import ResultFolder


def summarize(folder: ResultFolder, cfg: RunConfig) -> dict[str, Any] | None:
    """CAT-probing's section: `layers` (per transformer layer, the head-mean CAT-score and both
    baselines, each with its 95% bootstrap interval `*_ci`, and the paired differences
    `minus_positional`, `minus_random`), and the settings that shaped them."""
    path = folder.file("summary.json")
    if not path.exists():
        return None
    s = read_json(path)

    def diff(row, name):
        ci = row[f"{name}_ci"]
        return {"mean": row[name], "ci": ci, "distinguishable": excludes_zero(ci)}

    return {
        "layers": [
            {
                "layer": r["layer"],
                "score": r["score"],
                "score_ci": r["score_ci"],
                "score_std": r["score_std"],
                "random_baseline": r["random_baseline"],
                "random_baseline_ci": r["random_ci"],
                "positional_baseline": r["positional_baseline"],
                "positional_baseline_ci": r["positional_ci"],
                "minus_positional": diff(r, "minus_positional"),
                "minus_random": diff(r, "minus_random"),
                "n_used": r["n_used"],
                "n_skipped": r["n_skipped"],
                "skip_reasons": r["skip_reasons"],
            }
            for r in s["layers"]
            if r["head"] == MEAN_HEAD
        ],
        "types": s["settings"].get("types"),
        "kept_types": s["settings"].get("kept_types"),
        "distance": s["settings"].get("distance"),
        "quantile": s["settings"].get("quantile"),
        "max_subwords": s["settings"].get("max_subwords"),
    }


def model_info(folder: ResultFolder) -> dict[str, Any] | None:
    path = folder.file("summary.json")
    return read_json(path).get("model") if path.exists() else None


def html_view(folder: ResultFolder, section: dict[str, Any]) -> dict[str, Any]:
    """The section with what the HTML page adds: the (layer, head) map and the type rates."""
    import pyarrow.parquet as pq

    out = dict(section)
    out["heads"] = out.get("heads") or head_table(folder)
    rates = folder.file("rates.parquet")
    if rates.exists():
        n_samples = max((row.get("n_used") or 0 for row in out["layers"]), default=0)
        out["rates"] = _rates(pq.read_table(rates).to_pydict(), len(out["layers"]), n_samples)
    return out


def head_table(folder: ResultFolder) -> dict[str, Any] | None:
    """Dataset CAT-score of every (layer, head): the mean over samples with a score, from the
    shards' per-head rows. {"n_heads": H, "scores": L x H} or None without per-head rows."""
    files = folder.shards(prefix="heads")
    if not files:
        return None
    layer, head, score = [], [], []
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            layer.append(z["layer"]), head.append(z["head"]), score.append(z["score"])
    layer, head, score = np.concatenate(layer), np.concatenate(head), np.concatenate(score)
    sel = (head >= 0) & ~np.isnan(score)
    n_layers, n_heads = int(layer.max()) + 1, int(head.max()) + 1
    total = np.zeros((n_layers, n_heads))
    count = np.zeros((n_layers, n_heads))
    np.add.at(total, (layer[sel], head[sel]), score[sel])
    np.add.at(count, (layer[sel], head[sel]), 1)
    mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return {"n_heads": n_heads, "scores": [[None if np.isnan(v) else round(float(v), 6) for v in row] for row in mean]}


def _rates(table: dict[str, list], n_layers: int, n_samples: int) -> dict[str, Any]:
    types = list(dict.fromkeys(table["type"]))
    index = {t: i for i, t in enumerate(types)}
    rate = [[None] * len(types) for _ in range(n_layers)]
    rank = [[0] * len(types) for _ in range(n_layers)]
    num, eligible = [0] * len(types), [False] * len(types)
    for layer, t, n, r, e, k in zip(
        table["layer"], table["type"], table["num"], table["rate"], table["eligible"], table["rank"]
    ):
        if layer < n_layers:
            i = index[t]
            rate[layer][i] = None if r is None or r != r else round(r, 6)
            rank[layer][i], num[i], eligible[i] = k, n, bool(e)
    return {"types": types, "num": num, "eligible": eligible, "rate": rate, "rank": rank, "n_samples": n_samples}

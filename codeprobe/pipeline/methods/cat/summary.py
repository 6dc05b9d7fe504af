"""CAT-probing's section of summary.json, and what the HTML page adds to it (the layer x head
map and the type rates, read from the reduce's outputs)."""

from __future__ import annotations

from typing import Any

from codeprobe.files import read_json
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.methods.cat.steps import MEAN_HEAD
from codeprobe.pipeline.report.format import excludes_zero
from codeprobe.pipeline.runfolder import ResultFolder


def summarize(folder: ResultFolder, cfg: RunConfig) -> dict[str, Any] | None:
    """CAT-probing's section: `layers` (per transformer layer, the head-mean CAT-score and both
    baselines, each with its 95% bootstrap interval `*_ci`, and the paired differences
    `minus_positional`, `minus_random`), and the settings that shaped them: `max_subwords` is
    the input limit in use (the model's where lower than the setting), `n_truncated` counts
    the snippets the model read cut there, and `mask` is the cells scored ("causal": the pairs
    key <= query, a decoder's default; "full": all, the paper's; results that record none were
    scored in full)."""
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
        "mask": s["settings"].get("mask", "full"),
        "max_subwords": s["settings"].get("max_subwords"),
        "n_truncated": s["settings"].get("n_truncated"),
        "inputs": _inputs(s, cfg),
    }


def _inputs(s: dict[str, Any], cfg: RunConfig) -> dict[str, Any] | None:
    """What entered the scores (`codeprobe.pipeline.summary.input_lines` shows it): the
    snippets, how many were scored, cut at the input limit, or skipped (by reason)."""
    rows = [r for r in s["layers"] if r["head"] == MEAN_HEAD]
    if not rows:
        return None
    first = rows[0]
    dropped: dict[str, int] = {}
    for part in filter(None, (first.get("skip_reasons") or "").split("; ")):
        reason, _, count = part.rpartition("=")
        dropped[reason] = dropped.get(reason, 0) + int(count)
    used = sorted({int(r["n_used"]) for r in rows})
    return {
        "snippets": int(first["n_used"]) + int(first["n_skipped"]),
        "used": used[0] if len(used) == 1 else used,
        "used_as": "scored",
        "dropped": dropped,
        "truncated": s["settings"].get("n_truncated"),
        "max_subwords": s["settings"].get("max_subwords"),
        "max_subwords_setting": cfg.cat.max_subwords if cfg.cat is not None else None,
    }


def model_info(folder: ResultFolder) -> dict[str, Any] | None:
    path = folder.file("summary.json")
    return read_json(path).get("model") if path.exists() else None


def html_view(folder: ResultFolder, section: dict[str, Any]) -> dict[str, Any]:
    """The section with what the HTML page adds: the (layer, head) map and the type rates."""
    import pyarrow.parquet as pq

    out = dict(section)
    path = folder.file("summary.json")
    out["heads"] = out.get("heads") or (read_json(path).get("heads") if path.exists() else None)
    rates = folder.file("rates.parquet")
    if rates.exists():
        n_samples = max((row.get("n_used") or 0 for row in out["layers"]), default=0)
        out["rates"] = _rates(pq.read_table(rates).to_pydict(), len(out["layers"]), n_samples)
    return out


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

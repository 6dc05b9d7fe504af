"""CAT-probing (Chen et al., EMNLP 2022 Findings, arXiv:2210.04633) as a method of a run: one step
per shard of snippets (a forward pass with attention, scored as it streams), one reduce over the
shards; its summary section, report section, checkpoint-series curve and HTML views.

    RUN/cat/<model>/<language>-<dataset>/shard-NNNN.npz       a shard's scorer state (`_key`)
                                         heads-NNNN.npz       its per-head rows (paper/all)
                                         shard-NNNN.vectors/  AST-Probe's hidden states, pooled
                                                              by the same forward pass
                                         samples.parquet, layers.parquet, rates.parquet,
                                         summary.json         the reduce's outputs (`_key`)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codeprobe.files import read_json
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.registry import Method, SeriesCurve, Target, methods
from codeprobe.pipeline.report.format import difference, excludes_zero, with_ci
from codeprobe.pipeline.report.plots import axes, curve
from codeprobe.pipeline.runfolder import ResultFolder
from codeprobe.pipeline.steps import Steps
from codeprobe.progress import progress
from codeprobe.provenance import step_key, versions

MEAN_HEAD = "mean"  # summary.json's `head` of head-mean rows


def shared_tokens(cfg: RunConfig) -> dict[str, Any] | None:
    """The token settings with which this forward pass also pools a later method's hidden
    states (`Method.shared_pass`), or None: CAT-probing must read the source as given."""
    if cfg.cat is None or cfg.cat.model_input != "source":
        return None
    wanted = [m.shared_pass(cfg) for m in methods() if m.name != "cat" and m.enabled(cfg)
              and "hidden_states" in m.needs]
    return next((tokens for tokens in wanted if tokens is not None), None)


def step_settings(cfg: RunConfig, language: str) -> dict[str, Any]:
    """What shapes a CAT step for `language`, as JSON values: the CAT section with its type
    strategy resolved, the seed, the extraction, the hidden states it pools for later methods,
    the grammar and the library versions."""
    from codeprobe.probes.cat.types import default_strategy
    from codeprobe.syntax import grammar_info

    grammar = grammar_info(language)
    cat = cfg.cat.model_dump(mode="json")
    if cat["types"] == "auto":
        cat["types"] = default_strategy(language)
    return {"cat": cat, "seed": cfg.seed, "extraction": cfg.extraction.model_dump(mode="json"),
            "hidden_state_tokens": shared_tokens(cfg),
            "grammar": {"package": grammar.package, "version": grammar.package_version},
            "versions": versions()}


def run(cfg: RunConfig, steps: Steps, target: Target, log) -> None:
    """A step per shard of `extraction.shard_size` snippets, then the reduce."""
    settings = step_settings(cfg, target.language)
    shard_size = cfg.extraction.shard_size
    n_shards = max(1, -(-target.n_snippets // shard_size))
    where = (target.model_id, target.data_key)
    keys = [step_key("cat-shard", {"where": where, "shard": k, "shard_size": shard_size, "settings": settings})
            for k in range(n_shards)]
    futures = [steps.submit("cat-shard", cat_shard, target.model, target.language, target.data_dir, k, shard_size,
                            settings, str(target.results.shard(k)), keys[k]) for k in range(n_shards)]
    paths = []
    stores = target.shared.setdefault("hidden_states", {})
    for k, future in enumerate(progress(futures, desc=f"CAT {target.model}", unit="shard", inner=False)):
        paths.append(future.result())
        if settings["hidden_state_tokens"] is not None:
            stores[keys[k]] = str(hidden_state_store(paths[-1]))
        log.info("CAT %s / %s: shard %d/%d done", target.model, target.language, k + 1, n_shards)
    reduce_key = step_key("cat-reduce", {"shards": keys, "settings": settings})
    steps.submit("cat-reduce", cat_reduce, target.model, target.language, paths, settings,
                 str(target.results.path), reduce_key).result()
    log.info("CAT %s / %s: scored", target.model, target.language)


def hidden_state_store(shard_path: str | Path) -> Path:
    """Where a CAT shard keeps the hidden states its forward pass pooled for a later method."""
    return Path(shard_path).with_suffix(".vectors")


def heads_path(shard_path: str | Path) -> Path:
    """Where the per-head rows of shard `.../shard-NNNN.npz` go: `.../heads-NNNN.npz`."""
    p = Path(shard_path)
    return p.with_name("heads-" + p.name.removeprefix("shard-"))


# ---------------------------------------------------------------- steps (moved below)


# ---------------------------------------------------------------- summary


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
            {"layer": r["layer"], "score": r["score"], "score_ci": r["score_ci"], "score_std": r["score_std"],
             "random_baseline": r["random_baseline"], "random_baseline_ci": r["random_ci"],
             "positional_baseline": r["positional_baseline"], "positional_baseline_ci": r["positional_ci"],
             "minus_positional": diff(r, "minus_positional"), "minus_random": diff(r, "minus_random"),
             "n_used": r["n_used"], "n_skipped": r["n_skipped"], "skip_reasons": r["skip_reasons"]}
            for r in s["layers"] if r["head"] in (MEAN_HEAD, -1)
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


# ---------------------------------------------------------------- report


def report(sections: list[tuple[str, dict[str, Any]]], plots: Path) -> list[str]:
    """The Markdown section: CAT-score by layer with both baselines, and a table per result."""
    with axes(plots / "cat_by_layer.png", "CAT-score by layer (95% bootstrap bands)",
              "layer (transformer layer, 0-based)", "CAT-score") as ax:
        for label, c in sections:
            color = curve(ax, c["layers"], "layer", "score", "score_ci", marker="o", label=label)
            curve(ax, c["layers"], "layer", "random_baseline", "random_baseline_ci", color, ls=":",
                  label=f"{label}: random attention")
            curve(ax, c["layers"], "layer", "positional_baseline", "positional_baseline_ci", color, ls="--",
                  label=f"{label}: positional attention")
    lines = ["## CAT-probing", "", f"![CAT-score by layer]({plots.name}/cat_by_layer.png)", ""]
    for label, c in sections:
        lines += [f"**{label}** (types `{c['types']}`, distance `{c['distance']}`, q {c['quantile']})", "",
                  "| layer | CAT-score | random | positional | CAT - positional | samples | skipped |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {row['layer']} | {with_ci(row['score'], row['score_ci'])} | "
                  f"{with_ci(row['random_baseline'], row['random_baseline_ci'])} | "
                  f"{with_ci(row['positional_baseline'], row['positional_baseline_ci'])} | "
                  f"{difference(row['minus_positional'])} | {row['n_used']} | {row['n_skipped']} |"
                  for row in c["layers"]]
        lines.append("")
    return lines


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


def _rates(table: dict[str, list], n_layers: int, n_samples: int) -> dict[str, Any]:
    types = list(dict.fromkeys(table["type"]))
    index = {t: i for i, t in enumerate(types)}
    rate = [[None] * len(types) for _ in range(n_layers)]
    rank = [[0] * len(types) for _ in range(n_layers)]
    num, eligible = [0] * len(types), [False] * len(types)
    for layer, t, n, r, e, k in zip(table["layer"], table["type"], table["num"], table["rate"], table["eligible"],
                                    table["rank"]):
        if layer < n_layers:
            i = index[t]
            rate[layer][i] = None if r is None or r != r else round(r, 6)
            rank[layer][i], num[i], eligible[i] = k, n, bool(e)
    return {"types": types, "num": num, "eligible": eligible, "rate": rate, "rank": rank,
            "n_samples": n_samples}


# ---------------------------------------------------------------- over training


def best_row(c: dict) -> dict | None:
    """The layer row with the highest head-mean CAT-score (CAT-probing has no held-out split:
    the best layer is chosen on the scored snippets themselves, as in the paper)."""
    rows = [r for r in c["layers"] if r.get("score") is not None]
    return max(rows, key=lambda r: r["score"]) if rows else None


def _series_row(step: int, best: dict | None, v: dict) -> str:
    b = best or {}
    return (f"| {step} | {b.get('layer', 'n/a')} | {with_ci(b.get('score'), b.get('score_ci'))} | "
            f"{with_ci(b.get('random_baseline'), b.get('random_baseline_ci'))} | "
            f"{with_ci(b.get('positional_baseline'), b.get('positional_baseline_ci'))} | "
            f"{difference(b.get('minus_positional'))} |")


SERIES = SeriesCurve(
    title="CAT-score",
    layer_axis="transformer layer (0-based)",
    rows=lambda c: c["layers"],
    index="layer",
    score="score",
    best=best_row,
    values=lambda c, best: best,
    curves=(("best layer", "score", "score_ci", "-", "o"),
            ("random attention", "random_baseline", "random_baseline_ci", ":", None),
            ("positional attention", "positional_baseline", "positional_baseline_ci", "--", None)),
    table_header=("| step | best layer | CAT-score | random attention | positional attention | CAT - positional |",
                  "|---:|---:|---:|---:|---:|---:|"),
    table_row=_series_row,
)

METHOD = Method(
    name="cat",
    title="CAT-probing",
    needs=frozenset({"attention"}),
    run=run,
    summarize=summarize,
    report=report,
    series=SERIES,
    model_info=model_info,
    html_view=html_view,
)

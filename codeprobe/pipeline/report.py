"""Run summaries and reports: read a run folder's outputs into `summary.json`, and render one or
more runs as a Markdown report with plots (one curve per model and run).

Plots: CAT-score by layer with the random and positional baselines; AST-Probe F1 by layer with
the embedding-layer and random-weights baselines; AST-Probe F1 by rank.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from codeprobe.pipeline.config import RunConfig

TEXT_MODEL_NOTE = (
    "The packaged default model is sentence-transformers/all-MiniLM-L6-v2, a *text* sentence "
    "encoder (not a code model): its numbers are not CodeBERT's or any code model's."
)


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _clean(value):
    """JSON has no NaN: write null instead."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def summarize_run(run: Path, *, seconds: float | None = None, versions: dict[str, str] | None = None) -> dict:
    """Collect every (model, language, dataset) result of a run folder into RUN/summary.json.

    Each result: `model`, `language`, `dataset`, `data` (sample counts and skips by reason),
    `cat` (`layers`: per-layer head-mean score with both baselines and sample counts) and
    `astprobe` (`layers`, `baselines.embedding`, `baselines.random`, `ranks`).
    """
    run = Path(run)
    cfg = RunConfig.read(run / "config.json")
    results = []
    for model in cfg.models:
        for language in cfg.languages:
            for dataset in cfg.datasets:
                results.append(_result(run, cfg, model, language, dataset))
    summary = _clean({"run": str(run), "config": json.loads(cfg.to_json()), "seconds": seconds,
                      "versions": versions or {}, "results": results})
    (run / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def _result(run: Path, cfg: RunConfig, model: str, language: str, dataset: str) -> dict:
    from codeprobe.pipeline.config import slug

    key = f"{language}-{slug(dataset)}"
    out: dict[str, Any] = {"model": model, "language": language, "dataset": dataset}
    report = run / "data" / key / "report.json"
    if report.exists():
        out["data"] = _read(report)
    cat = run / "cat" / slug(model) / key / "summary.json"
    if cat.exists():
        s = _read(cat)
        out["model_info"] = s["model"]
        out["cat"] = {
            "layers": [
                {k: row[k] for k in ("layer", "score", "score_std", "random_baseline", "positional_baseline",
                                     "n_used", "n_skipped", "skip_reasons")}
                for row in s["layers"] if row["head"] == -1
            ],
            "types": s["settings"].get("types"),
            "kept_types": s["settings"].get("kept_types"),
            "distance": s["settings"].get("distance"),
            "quantile": s["settings"].get("quantile"),
        }
    points_dir = run / "astprobe" / slug(model) / key / "points"
    if points_dir.exists():
        points = [_read(p) for p in sorted(points_dir.glob("*.json"))]
        real = [p for p in points if not p["random_weights"] and p["rank"] == cfg.rank]
        random = [p for p in points if p["random_weights"]]
        ranks = [p for p in points if not p["random_weights"]]
        scored = [p for p in real if p.get("f1") is not None]
        best = max(scored, key=lambda p: p["f1"])["layer"] if scored else None
        out.setdefault("model_info", (real or points)[0].get("model") if points else None)
        out["astprobe"] = {
            "rank": cfg.rank,
            "layers": [_point(p) for p in real],
            "best_layer": best,
            "baselines": {
                "embedding": next((_point(p) for p in real if p["layer"] == 0), None),
                "random": [_point(p) for p in random],
            },
            "ranks": {"layer": best, "points": [_point(p) for p in ranks if p["layer"] == best]}
            if best is not None else None,
        }
    return out


def _point(p: dict) -> dict:
    keys = ("layer", "rank", "precision", "recall", "f1", "c_accuracy", "u_accuracy", "d_order_accuracy",
            "diverged", "best_epoch")
    return {k: p.get(k) for k in keys if k in p}


def render_report(runs: list[Path], out: Path) -> Path:
    """Write a Markdown report of one run, or a comparison of several, with PNG plots beside it.

    Returns:
        The report's path.
    """
    out = Path(out)
    plots = out.parent / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    summaries = []
    for run in runs:
        path = Path(run) / "summary.json"
        if not path.exists():
            raise FileNotFoundError(f"{run} is not a finished codeprobe run (no summary.json)")
        summaries.append(_read(path))
    label_run = len(summaries) > 1

    def curves(method: str):
        for s in summaries:
            for r in s["results"]:
                name = _model_name(r) + (f" ({Path(s['run']).name})" if label_run else "")
                yield s, r, f"{name}, {r['language']}, {r['dataset']}", r.get(method)

    lines = ["# codeprobe report", ""]
    if any(_is_text_model(r) for s in summaries for r in s["results"]):
        lines += [f"> {TEXT_MODEL_NOTE}", ""]
    for s in summaries:
        cfg = s["config"]
        lines += [f"Run `{s['run']}`: models {', '.join(cfg['models'])}; languages "
                  f"{', '.join(cfg['languages'])}; datasets {', '.join(cfg['datasets'])}; "
                  f"{cfg['n_snippets']} snippets each, seed {cfg['seed']}"
                  + (f"; {s['seconds']:.0f} s" if s.get("seconds") else "") + "."]
    lines.append("")

    cat = [(label, c) for _, _, label, c in curves("cat") if c]
    if cat:
        _plot_cat(cat, plots / "cat_by_layer.png")
        lines += ["## CAT-probing", "", "![CAT-score by layer](plots/cat_by_layer.png)", ""]
        for label, c in cat:
            lines += [f"**{label}** (types `{c['types']}`, distance `{c['distance']}`, q {c['quantile']})", "",
                      "| layer | CAT-score | random | positional | samples | skipped |",
                      "|---:|---:|---:|---:|---:|---:|"]
            lines += [f"| {row['layer']} | {_f(row['score'])} | {_f(row['random_baseline'])} | "
                      f"{_f(row['positional_baseline'])} | {row['n_used']} | {row['n_skipped']} |"
                      for row in c["layers"]]
            lines.append("")
    ast = [(label, a) for _, _, label, a in curves("astprobe") if a]
    if ast:
        _plot_astprobe_layers(ast, plots / "astprobe_by_layer.png")
        lines += ["## AST-Probe", "", "![AST-Probe F1 by layer](plots/astprobe_by_layer.png)", ""]
        if any(a.get("ranks") and len(a["ranks"]["points"]) > 1 for _, a in ast):
            _plot_astprobe_ranks(ast, plots / "astprobe_by_rank.png")
            lines += ["![AST-Probe F1 by rank](plots/astprobe_by_rank.png)", ""]
        for label, a in ast:
            random = {p["layer"]: p for p in a["baselines"]["random"]}
            lines += [f"**{label}** (rank {a['rank']}, best layer {a['best_layer']})", "",
                      "| layer | precision | recall | F1 | random-weights F1 |", "|---:|---:|---:|---:|---:|"]
            lines += [f"| {p['layer']} | {_f(p['precision'])} | {_f(p['recall'])} | {_f(p['f1'])} | "
                      f"{_f(random.get(p['layer'], {}).get('f1'))} |" for p in a["layers"]]
            lines.append("")
    for s in summaries:
        for r in s["results"]:
            data = r.get("data") or {}
            skipped = data.get("skipped") or {}
            if data:
                lines.append(f"Data {r['language']} / {r['dataset']}: read {data.get('read')}, kept "
                             f"{data.get('kept')}; skipped: "
                             + (", ".join(f"{k} {v}" for k, v in sorted(skipped.items())) or "none") + ".")
    if summaries[0].get("versions"):
        lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(summaries[0]["versions"].items()))]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _model_name(result: dict) -> str:
    info = result.get("model_info") or {}
    return info.get("name") or result["model"]


def _is_text_model(result: dict) -> bool:
    info = result.get("model_info") or {}
    return info.get("is_code_model") is False


def _axes(title: str, xlabel: str, ylabel: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return plt, fig, ax


def _save(plt, fig, ax, path: Path) -> None:
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _xy(rows, x, y):
    pts = [(r[x], r[y]) for r in rows if r.get(y) is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def _plot_cat(curves, path: Path) -> None:
    plt, fig, ax = _axes("CAT-score by layer", "layer (transformer layer, 0-based)", "CAT-score")
    for label, c in curves:
        line, = ax.plot(*_xy(c["layers"], "layer", "score"), marker="o", label=label)
        ax.plot(*_xy(c["layers"], "layer", "random_baseline"), ls=":", color=line.get_color(),
                label=f"{label}: random attention")
        ax.plot(*_xy(c["layers"], "layer", "positional_baseline"), ls="--", color=line.get_color(),
                label=f"{label}: positional attention")
    _save(plt, fig, ax, path)


def _plot_astprobe_layers(curves, path: Path) -> None:
    plt, fig, ax = _axes("AST-Probe F1 by layer", "hidden-states index (0 = embeddings)", "F1")
    for label, a in curves:
        line, = ax.plot(*_xy(a["layers"], "layer", "f1"), marker="o", label=label)
        if a["baselines"]["random"]:
            ax.plot(*_xy(a["baselines"]["random"], "layer", "f1"), ls=":", color=line.get_color(),
                    label=f"{label}: random weights")
        emb = a["baselines"]["embedding"]
        if emb and emb.get("f1") is not None:
            ax.axhline(emb["f1"], ls="--", color=line.get_color(), alpha=0.6, label=f"{label}: embedding layer")
    _save(plt, fig, ax, path)


def _plot_astprobe_ranks(curves, path: Path) -> None:
    plt, fig, ax = _axes("AST-Probe F1 by rank (best layer)", "rank", "F1")
    ax.set_xscale("log", base=2)
    for label, a in curves:
        if a.get("ranks"):
            ax.plot(*_xy(sorted(a["ranks"]["points"], key=lambda p: p["rank"]), "rank", "f1"), marker="o",
                    label=f"{label}, layer {a['ranks']['layer']}")
    _save(plt, fig, ax, path)

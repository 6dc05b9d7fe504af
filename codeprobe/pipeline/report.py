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

import numpy as np

from codeprobe.pipeline.config import RunConfig
from codeprobe.probes.astprobe.sweeps import select_on_validation
from codeprobe.uncertainty import N_RESAMPLES, mean_ci, paired_difference

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


def summarize_run(run: Path, *, seconds: float | None = None, versions: dict[str, str] | None = None,
                  stages: dict[str, float] | None = None) -> dict:
    """Collect every (model, language, dataset) result of a run folder into RUN/summary.json.

    Each result: `model`, `language`, `dataset`, `data` (sample counts and skips by reason),
    `cat` (`layers`: per-layer head-mean CAT-score and both baselines, each with its 95%
    bootstrap interval `*_ci`, and the paired differences `minus_positional`, `minus_random`)
    and `astprobe` (see `_astprobe`). Intervals are 95% percentile bootstraps over snippets,
    seeded (`codeprobe.uncertainty`).
    """
    run = Path(run)
    cfg = RunConfig.read(run / "config.json")
    results = []
    for model in cfg.models:
        for language in cfg.languages:
            for dataset in cfg.datasets:
                results.append(_result(run, cfg, model, language, dataset))
    summary = _clean({"run": str(run), "config": json.loads(cfg.to_json()), "seconds": seconds,
                      "stages": stages or {}, "versions": versions or {},
                      "uncertainty": UNCERTAINTY_NOTE, "results": results})
    (run / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


UNCERTAINTY_NOTE = (f"95% percentile bootstrap intervals over snippets ({N_RESAMPLES} resamples, seeded); "
                    "differences are paired (the same snippets scored both ways)")


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
        out["cat"] = _cat(s)
    ast_dir = run / "astprobe" / slug(model) / key
    if (ast_dir / "layers.json").exists():
        out["astprobe"] = _astprobe(ast_dir, cfg)
        out.setdefault("model_info", out["astprobe"].pop("model_info"))
        out["astprobe"].pop("model_info", None)
    return out


def _cat(s: dict) -> dict:
    def diff(row, name):
        ci = row[f"{name}_ci"]
        return {"mean": row[name], "ci": ci, "distinguishable": _excludes_zero(ci)}

    rows = s["layers"]
    return {
        "layers": [
            {"layer": r["layer"], "score": r["score"], "score_ci": r["score_ci"], "score_std": r["score_std"],
             "random_baseline": r["random_baseline"], "random_baseline_ci": r["random_ci"],
             "positional_baseline": r["positional_baseline"], "positional_baseline_ci": r["positional_ci"],
             "minus_positional": diff(r, "minus_positional"), "minus_random": diff(r, "minus_random"),
             "n_used": r["n_used"], "n_skipped": r["n_skipped"], "skip_reasons": r["skip_reasons"]}
            for r in rows if r["head"] == -1
        ],
        "types": s["settings"].get("types"),
        "kept_types": s["settings"].get("kept_types"),
        "distance": s["settings"].get("distance"),
        "quantile": s["settings"].get("quantile"),
        "max_subwords": s["settings"].get("max_subwords"),
    }


def _astprobe(folder: Path, cfg: RunConfig) -> dict:
    """AST-Probe's result: `layers` (test scores, `f1_ci`, `valid_f1`, training facts and paired
    differences to the embedding layer and to the random-weights model at the same layer),
    `best_layer` and `selection` ("validation"), `baselines` (`embedding`, `random`), `ranks`
    (the rank sweep at the best layer, its best rank chosen on validation too)."""
    real = _read(folder / "layers.json")
    random = _read(folder / "random.json") if (folder / "random.json").exists() else None
    ranks = _read(folder / "ranks.json") if (folder / "ranks.json").exists() else None
    layers = _aggregate(real)
    random_layers = {p["layer"]: p for p in _aggregate(random)} if random else {}
    embedding = next((p for p in layers if p["layer"] == 0), None)
    for p in layers:
        if embedding is not None and p["layer"] != 0:
            p["minus_embedding"] = _paired(p, embedding)
        if p["layer"] in random_layers:
            p["minus_random_weights"] = _paired(p, random_layers[p["layer"]])
    best = select_on_validation(real["points"], "layer", among=cfg.layers or None)
    out = {
        "rank": cfg.rank,
        "selection": "validation",
        "best_layer": best,
        "layers": [_public(p) for p in layers if not cfg.layers or p["layer"] in cfg.layers],
        "baselines": {
            "embedding": _public(embedding) if embedding else None,
            "random": [_public(p) for p in random_layers.values()],
            "random_model": (random or {}).get("model", {}).get("name"),
        },
        "ranks": None,
        "splits": real.get("splits"),
        "dropped": real.get("dropped"),
        "training": {**cfg.train_settings(), "seeds": cfg.probe_seeds},
        "model_info": real.get("model"),
    }
    if ranks is not None and best is not None:
        sweep = {"points": ranks["points"] + [p for p in real["points"] if p["layer"] == best]}
        points = sorted(_aggregate(sweep), key=lambda p: p["rank"])
        out["ranks"] = {"layer": best, "selection": "validation",
                        "best_rank": select_on_validation(sweep["points"], "rank"),
                        "points": [_public(p) for p in points]}
    return out


_SCORES = ("precision", "recall", "f1", "acc_c", "acc_u", "d_pairs", "valid_f1", "valid_precision",
           "valid_recall", "valid_acc_c", "valid_acc_u", "valid_d_pairs")


def _aggregate(sweep: dict | None) -> list[dict]:
    """One entry per (layer, rank): scores averaged over seeds, the per-snippet test F1
    averaged over seeds (for intervals and pairing), and the seeds' spread."""
    if not sweep:
        return []
    ids = sweep.get("test_ids")
    groups: dict[tuple[int, int], list[dict]] = {}
    for p in sweep["points"]:
        groups.setdefault((p["layer"], p["rank"]), []).append(p)
    out = []
    for (layer, rank), ps in sorted(groups.items()):
        ok = [p for p in ps if not p["diverged"]]
        entry: dict[str, Any] = {"layer": layer, "rank": rank, "seeds": len(ps), "diverged": not ok,
                                 "best_epoch": [p["best_epoch"] for p in ps] if len(ps) > 1 else ps[0]["best_epoch"],
                                 "hit_max_epochs": any(p.get("hit_max_epochs") for p in ps),
                                 "max_epochs": ps[0].get("max_epochs")}
        for k in _SCORES:
            vals = [p[k] for p in ok if p.get(k) is not None]
            entry[k] = float(np.mean(vals)) if vals else None
        if ok:
            per = np.mean([p["test_f1_per_snippet"] for p in ok], axis=0)
            entry["_per_snippet"] = dict(zip(ids, per)) if ids else None
            entry["f1_ci"] = mean_ci(per, random_state=layer * 1000 + rank).as_list()
            if len(ok) > 1:
                entry["f1_seed_std"] = float(np.std([p["f1"] for p in ok], ddof=1))
        else:
            entry["f1_ci"] = [None, None]
        out.append(entry)
    return out


def _paired(a: dict, b: dict) -> dict | None:
    """a's test F1 minus b's on the test snippets both scored, with a paired interval."""
    pa, pb = a.get("_per_snippet"), b.get("_per_snippet")
    if not pa or not pb:
        return None
    common = [i for i in pa if i in pb]
    diff = paired_difference([pa[i] for i in common], [pb[i] for i in common],
                             random_state=a["layer"] * 1000 + a["rank"])
    return diff.as_dict()


def _public(p: dict) -> dict:
    return {k: v for k, v in p.items() if not k.startswith("_")}


def _excludes_zero(ci) -> bool | None:
    if not ci or ci[0] is None or ci[1] is None:
        return None
    return bool(ci[0] > 0 or ci[1] < 0)


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
                  + (f"; {s['seconds']:.0f} s" if s.get("seconds") else "")
                  + (" (" + ", ".join(f"{k} {v:.0f} s" for k, v in s["stages"].items()) + ")"
                     if s.get("stages") else "") + "."]
    lines.append("")

    cat = [(label, c) for _, _, label, c in curves("cat") if c]
    if cat:
        _plot_cat(cat, plots / "cat_by_layer.png")
        lines += ["## CAT-probing", "", "![CAT-score by layer](plots/cat_by_layer.png)", "",
                  f"Brackets: {UNCERTAINTY_NOTE}.", ""]
        for label, c in cat:
            lines += [f"**{label}** (types `{c['types']}`, distance `{c['distance']}`, q {c['quantile']})", "",
                      "| layer | CAT-score | random | positional | CAT - positional | samples | skipped |",
                      "|---:|---:|---:|---:|---:|---:|---:|"]
            lines += [f"| {row['layer']} | {_ci(row['score'], row['score_ci'])} | "
                      f"{_ci(row['random_baseline'], row['random_baseline_ci'])} | "
                      f"{_ci(row['positional_baseline'], row['positional_baseline_ci'])} | "
                      f"{_diff(row['minus_positional'])} | {row['n_used']} | {row['n_skipped']} |"
                      for row in c["layers"]]
            lines.append("")
    ast = [(label, a) for _, _, label, a in curves("astprobe") if a]
    if ast:
        _plot_astprobe_layers(ast, plots / "astprobe_by_layer.png")
        lines += ["## AST-Probe", "", "![AST-Probe F1 by layer](plots/astprobe_by_layer.png)", ""]
        if any(a.get("ranks") and len(a["ranks"]["points"]) > 1 for _, a in ast):
            _plot_astprobe_ranks(ast, plots / "astprobe_by_rank.png")
            lines += ["![AST-Probe F1 by rank](plots/astprobe_by_rank.png)", ""]
        lines += ["Layers and ranks are chosen on the validation split; F1 is on the test split. "
                  f"Brackets: {UNCERTAINTY_NOTE}. `n.d.`: not distinguishable (the interval of the "
                  "difference crosses zero). `max!`: the best checkpoint was the last epoch allowed "
                  "(validation loss still falling: under-trained).", ""]
        for label, a in ast:
            lines += _astprobe_lines(label, a)
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
    return "n/a" if value is None else f"{value:.3f}"


def _ci(value, ci) -> str:
    if value is None:
        return "n/a"
    if not ci or ci[0] is None:
        return _f(value)
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def _diff(d: dict | None) -> str:
    if not d or d.get("mean") is None:
        return "n/a"
    text = f"{d['mean']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]"
    return text if d.get("distinguishable") else text + " n.d."


def _astprobe_lines(label: str, a: dict) -> list[str]:
    random = {p["layer"]: p for p in a["baselines"]["random"]}
    lines = [f"**{label}** (rank {a['rank']}; best layer on validation: {a['best_layer']})", "",
             "| layer | valid F1 | test F1 | random-weights F1 | F1 - embedding | F1 - random weights "
             "| acc c | acc u | d order | epoch |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in a["layers"]:
        rw = random.get(p["layer"], {})
        best = " **best**" if p["layer"] == a["best_layer"] else ""
        lines.append(
            f"| {p['layer']}{best} | {_f(p['valid_f1'])} | {_ci(p['f1'], p.get('f1_ci'))} | "
            f"{_ci(rw.get('f1'), rw.get('f1_ci'))} | {_diff(p.get('minus_embedding'))} | "
            f"{_diff(p.get('minus_random_weights'))} | {_f(p.get('acc_c'))} | {_f(p.get('acc_u'))} | "
            f"{_f(p.get('d_pairs'))} | {_epoch(p)} |")
    lines.append("")
    if a.get("ranks"):
        r = a["ranks"]
        lines += [f"Rank sweep at layer {r['layer']} (best rank on validation: {r['best_rank']}):", "",
                  "| rank | valid F1 | test F1 | epoch |", "|---:|---:|---:|---:|"]
        lines += [f"| {p['rank']} | {_f(p['valid_f1'])} | {_ci(p['f1'], p.get('f1_ci'))} | {_epoch(p)} |"
                  for p in r["points"]]
        lines.append("")
    flagged = [p["layer"] for p in [*a["layers"], *a["baselines"]["random"]] if p.get("hit_max_epochs")]
    if flagged:
        lines += [f"Warning: probes at layers {sorted(set(flagged))} reached the epoch limit while still "
                  "improving; raise `max_epochs`.", ""]
    return lines


def _epoch(p: dict) -> str:
    epoch = p.get("best_epoch")
    text = "/".join(map(str, epoch)) if isinstance(epoch, list) else str(epoch)
    return text + (" max!" if p.get("hit_max_epochs") else "")


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


def _band(ax, rows, x, ci, color) -> None:
    """Shade the 95% interval `ci` ([low, high] per row) around a curve."""
    pts = [(r[x], *r[ci]) for r in rows if r.get(ci) and r[ci][0] is not None]
    if pts:
        xs, lo, hi = zip(*pts)
        ax.fill_between(xs, lo, hi, color=color, alpha=0.15, linewidth=0)


def _plot_cat(curves, path: Path) -> None:
    plt, fig, ax = _axes("CAT-score by layer (95% bootstrap bands)", "layer (transformer layer, 0-based)",
                         "CAT-score")
    for label, c in curves:
        line, = ax.plot(*_xy(c["layers"], "layer", "score"), marker="o", label=label)
        color = line.get_color()
        _band(ax, c["layers"], "layer", "score_ci", color)
        ax.plot(*_xy(c["layers"], "layer", "random_baseline"), ls=":", color=color,
                label=f"{label}: random attention")
        _band(ax, c["layers"], "layer", "random_baseline_ci", color)
        ax.plot(*_xy(c["layers"], "layer", "positional_baseline"), ls="--", color=color,
                label=f"{label}: positional attention")
        _band(ax, c["layers"], "layer", "positional_baseline_ci", color)
    _save(plt, fig, ax, path)


def _plot_astprobe_layers(curves, path: Path) -> None:
    plt, fig, ax = _axes("AST-Probe test F1 by layer (95% bootstrap bands)", "hidden-states index (0 = embeddings)",
                         "F1")
    for label, a in curves:
        line, = ax.plot(*_xy(a["layers"], "layer", "f1"), marker="o", label=label)
        color = line.get_color()
        _band(ax, a["layers"], "layer", "f1_ci", color)
        if a["baselines"]["random"]:
            ax.plot(*_xy(a["baselines"]["random"], "layer", "f1"), ls=":", color=color,
                    label=f"{label}: random weights")
            _band(ax, a["baselines"]["random"], "layer", "f1_ci", color)
        emb = a["baselines"]["embedding"]
        if emb and emb.get("f1") is not None:
            ax.axhline(emb["f1"], ls="--", color=color, alpha=0.6, label=f"{label}: embedding layer")
        if a.get("best_layer") is not None:
            ax.axvline(a["best_layer"], color=color, alpha=0.25, lw=4, label=f"{label}: best on validation")
    _save(plt, fig, ax, path)


def _plot_astprobe_ranks(curves, path: Path) -> None:
    plt, fig, ax = _axes("AST-Probe F1 by rank (best layer)", "rank", "F1")
    ax.set_xscale("log", base=2)
    for label, a in curves:
        if a.get("ranks"):
            points = sorted(a["ranks"]["points"], key=lambda p: p["rank"])
            line, = ax.plot(*_xy(points, "rank", "f1"), marker="o", label=f"{label}, layer {a['ranks']['layer']}")
            _band(ax, points, "rank", "f1_ci", line.get_color())
    _save(plt, fig, ax, path)

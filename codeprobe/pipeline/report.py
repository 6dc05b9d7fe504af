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

from codeprobe.model.checkpoints import series_name
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.series import ProbedModel, recorded_models
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

    Each result: `model`, `language`, `dataset`, for a checkpoint of a series its training
    `step` (int) and `checkpoint` folder (see `codeprobe.pipeline.series`; every step with
    outputs in the run, so checkpoints deleted since stay), `data` (sample counts and skips by reason),
    `cat` (`layers`: per-layer head-mean CAT-score and both baselines, each with its 95%
    bootstrap interval `*_ci`, and the paired differences `minus_positional`, `minus_random`)
    and `astprobe` (see `_astprobe`). Intervals are 95% percentile bootstraps over snippets,
    seeded (`codeprobe.uncertainty`).
    """
    run = Path(run)
    cfg = RunConfig.read(run / "config.json")
    results = []
    for probed in (m for spec in cfg.models for m in recorded_models(run, spec)):
        for language in cfg.languages:
            for dataset in cfg.datasets:
                results.append(_result(run, cfg, probed, language, dataset))
    summary = _clean({"run": str(run), "config": json.loads(cfg.to_json()), "seconds": seconds,
                      "stages": stages or {}, "versions": versions or {},
                      "uncertainty": UNCERTAINTY_NOTE, "results": results})
    (run / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


UNCERTAINTY_NOTE = (f"95% percentile bootstrap intervals over snippets ({N_RESAMPLES} resamples, seeded); "
                    "differences are paired (the same snippets scored both ways)")


def _result(run: Path, cfg: RunConfig, probed: ProbedModel, language: str, dataset: str) -> dict:
    from codeprobe.pipeline.config import slug

    key = f"{language}-{slug(dataset)}"
    out: dict[str, Any] = {"model": probed.spec, "language": language, "dataset": dataset,
                           "folder": probed.folder}
    if probed.step is not None:
        out["step"] = probed.step
        out["checkpoint"] = probed.name or None  # None: deleted since it was probed
    report = run / "data" / key / "report.json"
    if report.exists():
        out["data"] = _read(report)
    cat = run / "cat" / probed.folder / key / "summary.json"
    if cat.exists():
        s = _read(cat)
        out["model_info"] = s["model"]
        out["cat"] = _cat(s)
    ast_dir = run / "astprobe" / probed.folder / key
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
        "vectors_reused": real.get("vectors_reused", 0),  # copied from CAT-probing's forward pass
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
                                 "never_improved": any(p.get("never_improved") for p in ps),
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
                if not is_last_step(s, r):  # a series' earlier checkpoints: see `_series_lines`
                    continue
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
    lines += _series_lines(summaries, plots, label_run)
    for s in summaries:
        for r in s["results"]:
            data = r.get("data") or {}
            skipped = data.get("skipped") or {}
            if data and is_last_step(s, r):
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
    failed = [p["layer"] for p in [*a["layers"], *a["baselines"]["random"]] if p.get("never_improved")]
    if failed:
        lines += [f"Warning: probes at layers {sorted(set(failed))} never improved on their first epoch "
                  "(marked `1 none!`): failed fits, not measurements. With a rank that is a large share "
                  "of the model's width, try `probe_init: \"orthogonal\"` (see `TrainConfig.init`).", ""]
    return lines


def _epoch(p: dict) -> str:
    epoch = p.get("best_epoch")
    text = "/".join(map(str, epoch)) if isinstance(epoch, list) else str(epoch)
    return text + (" max!" if p.get("hit_max_epochs") else "") + (" none!" if p.get("never_improved") else "")


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


def _curve(ax, rows, x: str, y: str, ci: str, color=None, **style) -> str:
    """Plot `y` against `x` with its 95% band `ci`; returns the line's colour."""
    line, = ax.plot(*_xy(rows, x, y), color=color, **style)
    _band(ax, rows, x, ci, line.get_color())
    return line.get_color()


def _plot_cat(curves, path: Path) -> None:
    plt, fig, ax = _axes("CAT-score by layer (95% bootstrap bands)", "layer (transformer layer, 0-based)",
                         "CAT-score")
    for label, c in curves:
        color = _curve(ax, c["layers"], "layer", "score", "score_ci", marker="o", label=label)
        _curve(ax, c["layers"], "layer", "random_baseline", "random_baseline_ci", color, ls=":",
               label=f"{label}: random attention")
        _curve(ax, c["layers"], "layer", "positional_baseline", "positional_baseline_ci", color, ls="--",
               label=f"{label}: positional attention")
    _save(plt, fig, ax, path)


def _plot_astprobe_layers(curves, path: Path) -> None:
    plt, fig, ax = _axes("AST-Probe test F1 by layer (95% bootstrap bands)", "hidden-states index (0 = embeddings)",
                         "F1")
    for label, a in curves:
        color = _curve(ax, a["layers"], "layer", "f1", "f1_ci", marker="o", label=label)
        if a["baselines"]["random"]:
            _curve(ax, a["baselines"]["random"], "layer", "f1", "f1_ci", color, ls=":",
                   label=f"{label}: random weights")
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
            _curve(ax, points, "rank", "f1", "f1_ci", marker="o", label=f"{label}, layer {a['ranks']['layer']}")
    _save(plt, fig, ax, path)


# ---------------------------------------------------------------- checkpoint series


def is_last_step(summary: dict, result: dict) -> bool:
    """True for a result that is not a checkpoint, or is its series' last checkpoint in the run."""
    if result.get("step") is None:
        return True
    same = [r["step"] for r in summary["results"] if r.get("step") is not None
            and (r["model"], r["language"], r["dataset"]) == (result["model"], result["language"], result["dataset"])]
    return result["step"] == max(same)


def series_groups(summaries: list[dict], label_run: bool = False) -> list[tuple[str, list[dict]]]:
    """(label, results by increasing step) for every checkpoint series (model, language,
    dataset) of the runs."""
    groups: dict[str, list[dict]] = {}
    for s in summaries:
        for r in s["results"]:
            if r.get("step") is not None:
                label = (f"{r['model']}" + (f" ({Path(s['run']).name})" if label_run else "")
                         + f", {r['language']}, {r['dataset']}")
                groups.setdefault(label, []).append({**r, "_run": Path(s["run"]).name})
    return [(label, sorted(rs, key=lambda r: r["step"])) for label, rs in groups.items()]


def cat_best_layer(cat: dict) -> dict | None:
    """The CAT layer row with the highest head-mean CAT-score (CAT-probing has no held-out split:
    the best layer is chosen on the scored snippets themselves, as in the paper)."""
    rows = [r for r in cat["layers"] if r.get("score") is not None]
    return max(rows, key=lambda r: r["score"]) if rows else None


def astprobe_best_layer(ast: dict) -> dict | None:
    """The AST-Probe layer entry chosen on validation (`best_layer`), with its test scores."""
    return next((p for p in ast["layers"] if p["layer"] == ast.get("best_layer")), None)


def _series_lines(summaries: list[dict], plots: Path, label_run: bool) -> list[str]:
    """The report's "Over training" section: per series and method, a step x layer heat map and
    the best layer's curve against the training step with its baselines, and a table."""
    from codeprobe.pipeline.config import slug

    groups = series_groups(summaries, label_run)
    if not groups:
        return []
    lines = ["## Over training (checkpoint series)", "",
             "Each checkpoint of a series is probed like a model of its own; the per-layer sections "
             "above show each series' last checkpoint. Heat maps: score per (training step, layer); "
             "curves: the best layer at each step (AST-Probe: chosen on validation; CAT: highest "
             f"CAT-score), with its baselines. Brackets and bands: {UNCERTAINTY_NOTE}.", ""]
    for label, results in groups:
        first = results[0]
        name = "-".join([slug(series_name(first["model"])), first["language"], slug(first["dataset"]),
                         *([slug(first["_run"])] if label_run else [])])
        cat = [r for r in results if r.get("cat")]
        ast = [r for r in results if r.get("astprobe")]
        lines += [f"### {label}", ""]
        if cat:
            path = plots / f"series-{name}-cat.png"
            _plot_series(cat, "cat", label, path)
            lines += [f"![CAT-score over training]({plots.name}/{path.name})", "",
                      "| step | best layer | CAT-score | random attention | positional attention | CAT - positional |",
                      "|---:|---:|---:|---:|---:|---:|"]
            for r in cat:
                b = cat_best_layer(r["cat"]) or {}
                lines.append(f"| {r['step']} | {b.get('layer', 'n/a')} | {_ci(b.get('score'), b.get('score_ci'))} | "
                             f"{_ci(b.get('random_baseline'), b.get('random_baseline_ci'))} | "
                             f"{_ci(b.get('positional_baseline'), b.get('positional_baseline_ci'))} | "
                             f"{_diff(b.get('minus_positional'))} |")
            lines.append("")
        if ast:
            path = plots / f"series-{name}-astprobe.png"
            _plot_series(ast, "astprobe", label, path)
            lines += [f"![AST-Probe F1 over training]({plots.name}/{path.name})", "",
                      "| step | best layer (valid) | test F1 | embedding layer F1 | random weights F1 (same layer) "
                      "| F1 - embedding | F1 - random weights |", "|---:|---:|---:|---:|---:|---:|---:|"]
            for r in ast:
                a = r["astprobe"]
                b = astprobe_best_layer(a) or {}
                emb = a["baselines"]["embedding"] or {}
                rw = {p["layer"]: p for p in a["baselines"]["random"]}.get(b.get("layer"), {})
                lines.append(f"| {r['step']} | {b.get('layer', 'n/a')} | {_ci(b.get('f1'), b.get('f1_ci'))} | "
                             f"{_ci(emb.get('f1'), emb.get('f1_ci'))} | {_ci(rw.get('f1'), rw.get('f1_ci'))} | "
                             f"{_diff(b.get('minus_embedding'))} | {_diff(b.get('minus_random_weights'))} |")
            lines.append("")
    return lines


def series_matrix(results: list[dict], method: str) -> tuple[list[int], list[int], np.ndarray]:
    """(steps, layers, scores): scores[i, j] is the score of layer layers[j] at steps[i] (CAT:
    head-mean CAT-score; AST-Probe: test F1), NaN where missing. Shape (n_steps, n_layers)."""
    key, rows_of = ("score", lambda r: r["cat"]["layers"]) if method == "cat" else \
        ("f1", lambda r: r["astprobe"]["layers"])
    steps = [r["step"] for r in results]
    layers = sorted({row["layer"] for r in results for row in rows_of(r)})
    scores = np.full((len(steps), len(layers)), np.nan)
    for i, r in enumerate(results):
        for row in rows_of(r):
            if row.get(key) is not None:
                scores[i, layers.index(row["layer"])] = row[key]
    return steps, layers, scores


def _plot_series(results: list[dict], method: str, label: str, path: Path) -> None:
    """Two panels: the step x layer heat map, and the best layer's score over steps with its 95%
    band and baselines (CAT: random and positional attention; AST-Probe: the embedding layer and
    the random-weights model at the same layer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, layers, scores = series_matrix(results, method)
    title = "CAT-score" if method == "cat" else "AST-Probe test F1"
    fig, (hm, ax) = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1.1, 1]})
    image = hm.imshow(scores.T, origin="lower", aspect="auto", cmap="viridis")
    fig.colorbar(image, ax=hm, label=title)
    hm.set_xticks(range(len(steps)), [str(s) for s in steps], rotation=45 if len(steps) > 8 else 0)
    hm.set_yticks(range(len(layers)), [str(layer) for layer in layers])
    hm.set_xlabel("training step (checkpoints)")
    hm.set_ylabel("transformer layer (0-based)" if method == "cat" else "hidden-states index (0 = embeddings)")
    hm.set_title(f"{title} per layer and step")
    finite = scores[np.isfinite(scores)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0
    for i in range(len(steps)):
        for j in range(len(layers)):
            if np.isfinite(scores[i, j]):
                hm.text(i, j, f"{scores[i, j]:.3f}", ha="center", va="center", fontsize=6,
                        color="black" if scores[i, j] > middle else "white")

    if method == "cat":
        best = [(r["step"], cat_best_layer(r["cat"])) for r in results]
        curves = [("best layer", "score", "score_ci", "-", "o"),
                  ("random attention", "random_baseline", "random_baseline_ci", ":", None),
                  ("positional attention", "positional_baseline", "positional_baseline_ci", "--", None)]
        points = [(step, b, b) for step, b in best if b]
    else:
        points = []
        for r in results:
            a = r["astprobe"]
            b = astprobe_best_layer(a)
            if b:
                rw = {p["layer"]: p for p in a["baselines"]["random"]}.get(b["layer"], {})
                emb = a["baselines"]["embedding"] or {}
                points.append((r["step"], b, {"f1": b.get("f1"), "f1_ci": b.get("f1_ci"),
                                              "emb": emb.get("f1"), "emb_ci": emb.get("f1_ci"),
                                              "rw": rw.get("f1"), "rw_ci": rw.get("f1_ci")}))
        curves = [("best layer (valid)", "f1", "f1_ci", "-", "o"),
                  ("embedding layer", "emb", "emb_ci", "--", None),
                  ("random weights, same layer", "rw", "rw_ci", ":", None)]
    for name, key, ci, style, marker in curves:
        rows = [{"step": step, key: values.get(key), ci: values.get(ci)} for step, _, values in points]
        if _xy(rows, "step", key)[0]:
            _curve(ax, rows, "step", key, ci, ls=style, marker=marker, label=name)
    for step, b, values in points:
        y = values["score"] if method == "cat" else values["f1"]
        if y is not None:
            ax.annotate(str(b["layer"]), (step, y), textcoords="offset points", xytext=(0, 6), fontsize=7,
                        ha="center")
    if steps:
        if min(steps) > 0:
            ax.set_xscale("log")
        else:
            ax.set_xscale("symlog", linthresh=1)
        ax.set_xticks(steps, [str(s) for s in steps], rotation=45 if len(steps) > 8 else 0)
        ax.minorticks_off()
    ax.set_xlabel("training step")
    ax.set_ylabel(title)
    ax.set_title("best layer over training (labels: the layer); 95% bands")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.suptitle(label, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

"""What a run's HTML report shows beyond summary.json: per-head CAT-scores (scored in each CAT
shard), the snippet explorer's sample (one task per model, language and dataset), and the
report itself (`write_report_html`).

    RUN/cat/<model>/<language>-<dataset>/heads-NNNN.npz   per (sample, layer, head) CAT-scores
    RUN/explorer/<model>/<language>-<dataset>.json              the explorer's sample
    RUN/report.html                                             the interactive report
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("codeprobe.pipeline")

# ---------------------------------------------------------------- per-head CAT-scores


def heads_path(shard_path: str | Path) -> Path:
    """Where the per-head rows of shard `.../shard-NNNN.npz` go: `.../heads-NNNN.npz`."""
    p = Path(shard_path)
    return p.with_name("heads-" + p.name.removeprefix("shard-"))


def write_head_scores(samples: list, language: str, settings: dict[str, Any], shard_path: str) -> list:
    """Score every head of a shard's samples (per-head attention (L, H, n, n)) and write the
    rows beside the shard; return the samples with head-mean attention (L, n, n), which is all
    the shard itself keeps (per-head attention would make shards H times larger).

    The kept types must be known before the whole dataset is seen, so "topk" has no per-head
    rows (its types come from dataset-wide rates); "paper" and "all" do.
    """
    from dataclasses import replace

    from codeprobe.probes.cat.dataset import head_mean, score_sample
    from codeprobe.probes.cat.types import select_types

    per_head = [s for s in samples if np.ndim(s.attention) == 4]
    if not per_head:
        return samples
    if settings["types"] != "topk":
        kept = select_types(settings["types"], language=language, n_layers=per_head[0].attention.shape[0])
        rows = [score_sample(s, kept, quantile=settings["quantile"], random_state=settings["seed"]) for s in per_head]
        arrays = {k: np.concatenate([r[k] for r in rows]) for k in ("layer", "head", "score")}
        arrays["sample_id"] = np.concatenate([r["sample_id"] for r in rows]).astype(str)
        path = heads_path(shard_path)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    return [replace(s, attention=head_mean(s.attention).astype(np.float32)) if np.ndim(s.attention) == 4 else s
            for s in samples]


def head_table(cat_dir: Path) -> dict[str, Any] | None:
    """Dataset CAT-score of every (layer, head): the mean over samples with a score, from the
    shards' per-head rows. {"n_heads": H, "scores": L x H} or None without per-head rows."""
    files = sorted(Path(cat_dir).glob("heads-*.npz"))
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


# ---------------------------------------------------------------- explorer sample


def explorer_jobs(run: Path, cfg, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Keyword arguments of one `explorer_sample` task per (model, language, dataset) result."""
    from codeprobe.pipeline.config import slug

    jobs = []
    if cfg.explorer_snippets <= 0:
        return jobs
    for r in summary.get("results", []):
        key = f"{r['language']}-{slug(r['dataset'])}"
        ast = r.get("astprobe") or {}
        best = ast.get("best_layer")
        probe = (run / "astprobe" / slug(r["model"]) / key / "probes" / f"layer_{best:02d}_rank_{cfg.rank:03d}"
                 if best is not None else None)
        cat_summary = run / "cat" / slug(r["model"]) / key / "summary.json"
        jobs.append({
            "model": r["model"], "language": r["language"], "data_dir": str(run / "data" / key),
            "cat_summary": str(cat_summary) if cat_summary.exists() else None,
            "probe_dir": str(probe) if probe is not None and probe.exists() else None,
            "settings": {"n": cfg.explorer_snippets, "seed": cfg.seed, "device": cfg.device,
                         "batch_size": cfg.batch_size, "cache_dir": str(run / "cache" / "vectors")},
            "out_path": str(run / "explorer" / slug(r["model"]) / f"{key}.json"),
        })
    return jobs


def explorer_sample(model: str, language: str, data_dir: str, cat_summary: str | None, probe_dir: str | None,
                    settings: dict[str, Any], out_path: str, key: str) -> str:
    """The snippet explorer's sample of a run's test split, written as JSON to `out_path`
    (recording the step `key`; a file that records it already is kept).

    CAT view with the run's own kept types and settings (from its CAT summary); the recovered
    trees of the selected AST-Probe probe, and its per-non-terminal scores over the whole test
    split (its vectors are already cached). Returns `out_path`.
    """
    from codeprobe.pipeline.tasks import (
        KEY_FIELD,
        device_lock,
        is_done,
        loaded_model,
        read_snippets,
        read_splits,
        write_json,
    )
    from codeprobe.viz.explorer import explorer_payload, nonterminal_scores

    if is_done(out_path, key):
        return out_path
    by_id = {s.id: s for s in read_snippets(data_dir)}
    test = [by_id[i] for i in read_splits(data_dir)["test"]]
    cat = json.loads(Path(cat_summary).read_text(encoding="utf-8"))["settings"] if cat_summary else None
    with device_lock(settings.get("device")):
        loaded = loaded_model(model, settings.get("device"))
        probe = trees = labels = None
        if probe_dir:
            from codeprobe.probes.astprobe.estimator import ASTProbe

            probe = ASTProbe.load(probe_dir, model=loaded, cache_dir=settings["cache_dir"])
            trees = probe.predict([(s.id, s.code) for s in test])
            labels = nonterminal_scores(trees)
        payload = explorer_payload(
            [(s.id, s.code) for s in test], language=language, model=loaded, cat=cat is not None,
            types=cat["types"] if cat else None, distance=cat["distance"] if cat else "uast",
            quantile=cat["quantile"] if cat else 0.75, random_state=cat["random_state"] if cat else 0,
            max_subwords=cat["max_subwords"] if cat else 256, kept_types=cat["kept_types"] if cat else None,
            probe=probe, trees=trees, max_snippets=settings["n"], seed=settings["seed"],
            batch_size=settings["batch_size"])
    if labels is not None:
        payload["labels"] = {"layer": probe.layer, "rank": probe.rank, "n_snippets": len(trees), "rows": labels}
    return str(write_json(Path(out_path), {**payload, KEY_FIELD: key}))


# ---------------------------------------------------------------- the report


def _model_name(result: dict) -> str:
    """The model's name; a local directory by its last part (its full path is in the header)."""
    name = (result.get("model_info") or {}).get("name") or result["model"]
    return Path(name).name if Path(name).is_absolute() else name


def run_series(run: Path, *, label_run: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary, one report series per result) of a finished run folder."""
    import pyarrow.parquet as pq

    from codeprobe.pipeline.config import slug

    run = Path(run)
    path = run / "summary.json"
    if not path.exists():
        raise FileNotFoundError(f"{run} is not a finished codeprobe run (no summary.json)")
    summary = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for r in summary.get("results", []):
        key = f"{r['language']}-{slug(r['dataset'])}"
        label = f"{_model_name(r)}, {r['language']}, {Path(r['dataset']).name}"
        if label_run:
            label += f" ({Path(summary.get('run', str(run))).name})"
        if isinstance(r.get("step"), int):
            label += f", step {r['step']}"
        s: dict[str, Any] = {"label": label, "model": _model_name(r), "language": r["language"],
                             "dataset": r["dataset"], "step": r.get("step"), "run": summary.get("run")}
        cat_dir = run / "cat" / slug(r["model"]) / key
        if r.get("cat"):
            cat = dict(r["cat"])
            cat["heads"] = cat.get("heads") or head_table(cat_dir)
            rates = cat_dir / "rates.parquet"
            if rates.exists():
                n_samples = max((row.get("n_used") or 0 for row in cat["layers"]), default=0)
                cat["rates"] = _rates(pq.read_table(rates).to_pydict(), len(cat["layers"]), n_samples)
            s["cat"] = cat
        if r.get("astprobe"):
            s["astprobe"] = dict(r["astprobe"])
        explorer = run / "explorer" / slug(r["model"]) / f"{key}.json"
        if explorer.exists():
            payload = json.loads(explorer.read_text(encoding="utf-8"))
            labels = payload.pop("labels", None)
            if labels and "astprobe" in s:
                s["astprobe"].update(labels=labels["rows"], labels_layer=labels["layer"],
                                     labels_snippets=labels["n_snippets"])
            s["explorer"] = payload
        out.append(s)
    return summary, out


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


def write_report_html(runs: list[Path] | Path, out: Path | None = None) -> Path:
    """Write the interactive report of one run (default RUN/report.html) or the comparison of
    several (default ./comparison.html): every result of every run as one series."""
    from codeprobe.pipeline.report import TEXT_MODEL_NOTE
    from codeprobe.viz.html import report_html, write_html

    runs = [Path(runs)] if isinstance(runs, (str, Path)) else [Path(r) for r in runs]
    out = Path(out) if out else (runs[0] / "report.html" if len(runs) == 1 else Path("comparison.html"))
    lines, series, footer, warnings = [], [], [], []
    versions = None
    for run in runs:
        summary, part = run_series(run, label_run=len(runs) > 1)
        series += part
        cfg = summary.get("config", {})
        lines.append(f"Run {summary.get('run', run)}: models {', '.join(cfg.get('models', []))}; languages "
                     f"{', '.join(cfg.get('languages', []))}; datasets {', '.join(cfg.get('datasets', []))}; "
                     f"{cfg.get('n_snippets')} snippets each, seed {cfg.get('seed')}"
                     + (f"; {summary['seconds']:.0f} s" if summary.get("seconds") else "") + ".")
        for r in summary.get("results", []):
            note = TEXT_MODEL_NOTE.replace("*", "")  # Markdown emphasis
            if (r.get("model_info") or {}).get("is_code_model") is False and note not in warnings:
                warnings.append(note)
            data = r.get("data") or {}
            if data:
                skipped = ", ".join(f"{k} {v}" for k, v in sorted((data.get("skipped") or {}).items())) or "none"
                footer.append(f"Data {r['language']} / {r['dataset']}: read {data.get('read')}, kept {data.get('kept')}; "
                              f"skipped: {skipped}.")
        versions = versions or summary.get("versions")
    if versions:
        footer.append("Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    title = "codeprobe report" if len(runs) == 1 else f"codeprobe comparison of {len(runs)} runs"
    return write_html(report_html(series, title=title, lines=lines, warnings=warnings, footer=footer), out)

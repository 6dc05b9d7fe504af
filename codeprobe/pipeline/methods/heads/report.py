"""Attention-head relations in the Markdown report (the headline, the relation x layer map, a
table per direction) and over a checkpoint series (its `SeriesCurve`: each relation's best-head
score per step, and the mean over relations against the mean best baseline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from codeprobe.files import write_atomic
from codeprobe.pipeline.registry import SeriesCurve
from codeprobe.pipeline.report.format import difference, number, with_ci

MEAN_ROW = "mean"  # the followed row: the mean over relations


def _diff(d: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if d is None else {"mean": d["mean"], "ci": d["ci"], "distinguishable": d.get("distinguishable")}


def headline_text(c: dict[str, Any]) -> str:
    """One sentence: the mean best-head score over relations against the mean best baseline,
    the difference and the share of relations beating every baseline, with intervals."""
    h = c["headline"]
    if not h.get("n_relations"):
        return "No relation had enough edges to score (see `rare_relations`)."
    diff = {"mean": h["mean_difference"], "ci": h["mean_difference_ci"]}
    ci = diff["ci"]
    diff["distinguishable"] = bool(ci and ci[0] is not None and (ci[0] > 0 or ci[1] < 0))
    return (
        f"{h['direction']} ({h['dependent']} token), top-{h['k']}, over {h['n_relations']} relations: "
        f"best head (chosen on validation) {with_ci(h['mean'], h['mean_ci'])}; best baseline "
        f"{with_ci(h['mean_best_baseline'], h['mean_best_baseline_ci'])}; model - best baseline "
        f"{difference(diff)}; the model beats every baseline (paired interval above 0) on "
        f"{h['share_beating_all']:.0%} of the relations."
    )


def relation_layer_map(path: Path, label: str, c: dict[str, Any]) -> bool:
    """The relation x layer heat map of the headline direction's top-1 (first k): each cell the
    test score of that layer's best head on validation. Returns False (nothing written) when
    no relation was scored."""
    h = c["headline"]
    block = next(s for s in c["scores"] if (s["direction"], s["dependent"]) == (h["direction"], h["dependent"]))
    rows = [r for r in block["relations"] if r.get("by_layer")]
    if not rows:
        return False
    from matplotlib.figure import Figure

    values = np.array([[np.nan if v is None else v for v in r["by_layer"]] for r in rows], dtype=float)
    n_layers = values.shape[1]
    # Room for the relation names on the left and the colour bar's label on the right.
    fig = Figure(figsize=(max(7.0, 4.5 + 0.55 * n_layers), 1.6 + 0.24 * len(rows)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(values, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label=f"top-{h['k']} accuracy (test)")
    ax.set_xticks(range(n_layers), [str(i) for i in range(n_layers)])
    ax.set_yticks(range(len(rows)), [r["relation"] for r in rows], fontsize=7)
    ax.set_xlabel("layer (transformer layer, 0-based)")
    for i in range(values.shape[0]):
        for j in range(n_layers):
            if np.isfinite(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="black" if values[i, j] > 0.5 else "white")  # fmt: skip
    ax.set_title(f"{label}\n{h['direction']} top-{h['k']}: each layer's best head (chosen on validation)", fontsize=9)
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    return True


def _table(block: dict[str, Any], ks: list[int]) -> list[str]:
    k0 = str(ks[0])
    head = " | ".join(f"top-{k}" for k in ks)
    lines = [
        f"| relation | test edges | head (layer.head) | {head} | best baseline (top-{k0}) | "
        f"model - best baseline | beats every baseline |",
        "|---|---:|---:|" + "---:|" * len(ks) + "---|---:|:---:|",
    ]
    for r in sorted(block["relations"], key=lambda r: -(r["k"][k0]["test"]["mean"] or 0)):
        first = r["k"][k0]
        best = first["best_baseline"]
        base = first["baselines"][best]
        rules = first["rules"].get(best)
        name = f"{best} ({', '.join(rules)})" if rules else best
        cells = " | ".join(with_ci(r["k"][str(k)]["test"]["mean"], r["k"][str(k)]["test"]["ci"]) for k in ks)
        lines.append(
            f"| `{r['relation']}` | {r['test_edges']} | {first['layer']}.{first['head']} | {cells} | "
            f"{name}: {with_ci(base['mean'], base['ci'])} | {difference(_diff(first['difference']))} | "
            f"{'yes' if first['beats_all'] else 'no'} |"
        )
    return lines


def report(sections: list[tuple[str, dict[str, Any]]], plots: Path) -> list[str]:
    """The Markdown section: per result, the headline, the relation x layer map and a table of
    relations per direction (winning head, its top-k with intervals, the best baseline, the
    paired difference)."""
    lines = [
        "## Attention-head relations",
        "",
        "Per relation (from the grammar's fields: `docs/relations.md`) and direction, the attention head "
        "whose top-k attended tokens most often hold the edge's target, chosen on the validation split and "
        "scored on test; against the best fixed offsets, offsets + keywords (CodeSyntax's baseline), random "
        "attention and the random-weights model, each chosen on validation too (each k chooses its own head, so "
        "a head's top-3 can read below another's top-1). A claim that the model beats the baselines is made "
        "only where the paired 95% interval excludes 0.",
        "",
    ]
    for i, (label, c) in enumerate(sections):
        ks = c["settings"]["ks"]
        lines += [f"**{label}**: {headline_text(c)}", ""]
        for note in c.get("notes", []):
            lines += [f"Note: {note}.", ""]
        inputs = c["inputs"]
        lines += [
            f"{inputs['used']} of {inputs['snippets']} snippets scored ({inputs['validation']} validation, "
            f"{inputs['test']} test); {inputs['dropped_edges']} edges dropped (a token past the input limit); "
            f"{len(c['rare_relations'])} relations with fewer than {c['settings']['min_count']} edges left out.",
            "",
        ]
        path = plots / f"heads_by_layer-{i}.png"
        if relation_layer_map(path, label, c):
            lines += [f"![relation x layer]({plots.name}/{path.name})", ""]
        for block in c["scores"]:
            if not block["relations"]:
                continue
            lines += [
                f"*{block['direction']}* ({block['dependent']} token of the dependent)",
                "",
                *_table(block, ks),
                "",
            ]
    return lines


def _series_rows(c: dict[str, Any]) -> list[dict[str, Any]]:
    """Each relation's best-head score (headline direction, first k) as a series row."""
    h = c["headline"]
    k0 = str(h["k"])
    for block in c["scores"]:
        if (block["direction"], block["dependent"]) == (h["direction"], h["dependent"]):
            return [{"relation": r["relation"], "score": r["k"][k0]["test"]["mean"]} for r in block["relations"]]
    return []


def _series_best(c: dict[str, Any]) -> dict[str, Any] | None:
    """The mean over relations (the headline), as the row followed over training."""
    h = c["headline"]
    if not h.get("n_relations"):
        return None
    return {
        "relation": MEAN_ROW,
        "score": h["mean"],
        "score_ci": h["mean_ci"],
        "baseline": h["mean_best_baseline"],
        "baseline_ci": h["mean_best_baseline_ci"],
        "difference": {"mean": h["mean_difference"], "ci": h["mean_difference_ci"]},
        "share_beating_all": h["share_beating_all"],
        "n_relations": h["n_relations"],
    }


def _series_row(step: int, best: dict | None, v: dict) -> str:
    b = best or {}
    d = b.get("difference")
    if d is not None:
        ci = d["ci"]
        d = {**d, "distinguishable": bool(ci and ci[0] is not None and (ci[0] > 0 or ci[1] < 0))}
    share = b.get("share_beating_all")
    return (
        f"| {step} | {b.get('n_relations', 'n/a')} | {with_ci(b.get('score'), b.get('score_ci'))} | "
        f"{with_ci(b.get('baseline'), b.get('baseline_ci'))} | {difference(d)} | "
        f"{'n/a' if share is None else number(share)} |"
    )


SERIES = SeriesCurve(
    title="best-head top-k accuracy",
    index_name="relation",
    index_axis="relation",
    rows=_series_rows,
    index="relation",
    score="score",
    best=_series_best,
    values=lambda c, best: best,
    curves=(
        ("mean over relations (best heads)", "score", "score_ci", "-", "o"),
        ("mean best baseline", "baseline", "baseline_ci", "--", None),
    ),
    table_header=(
        "| step | relations | best heads (mean) | best baselines (mean) | model - baseline | share beating all |",
        "|---:|---:|---:|---:|---:|---:|",
    ),
    table_row=_series_row,
    curve_title="mean of the relations' best heads; 95% bands",
)

"""The structural probes in the Markdown report (each probe's headline by hidden state with its
baselines, and a table per result) and over a checkpoint series (the distance probe's UUAS: its
`SeriesCurve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codeprobe.pipeline.methods.structural.summary import METRICS
from codeprobe.pipeline.registry import SeriesCurve
from codeprobe.pipeline.report.format import difference, number, with_ci
from codeprobe.pipeline.report.plots import axes, curve

NAMES = {"uuas": "UUAS", "dspr": "DSpr", "nspr": "NSpr", "root_accuracy": "root accuracy"}
TITLES = {"distance": "distance probe", "depth": "depth probe"}


def report(sections: list[tuple[str, dict[str, Any]]], plots: Path) -> list[str]:
    """The Markdown section: per probe its headline (UUAS, NSpr) by hidden state with bands and
    baselines, and a table per result and probe."""
    lines = ["## Structural probes", ""]
    for kind in METRICS:
        shown = [(label, a["probes"][kind]) for label, a in sections if kind in a.get("probes", {})]
        if not shown:
            continue
        metric = METRICS[kind][0]
        name = f"structural_{kind}_by_hidden_state.png"
        with axes(
            plots / name,
            f"Structural {TITLES[kind]}: test {NAMES[metric]} by hidden state (95% bootstrap bands)",
            "hidden-states index (0 = embeddings)",
            NAMES[metric],
        ) as ax:
            for label, p in shown:
                color = curve(ax, p["hidden_states"], "hidden_state", metric, f"{metric}_ci", marker="o", label=label)
                b = p["baselines"]
                if b["random"]:
                    style = {"ls": ":"} if len(b["random"]) > 1 else {"ls": "none", "marker": "v"}
                    curve(
                        ax,
                        b["random"],
                        "hidden_state",
                        metric,
                        f"{metric}_ci",
                        color,
                        label=f"{label}: random weights",
                        **style,
                    )
                if b["control"]:
                    style = {"ls": "-."} if len(b["control"]) > 1 else {"ls": "none", "marker": "x"}
                    curve(
                        ax,
                        b["control"],
                        "hidden_state",
                        metric,
                        f"{metric}_ci",
                        color,
                        label=f"{label}: control tree",
                        **style,
                    )
                if b["linear"].get(metric) is not None:
                    ax.axhline(b["linear"][metric], ls="--", color=color, alpha=0.6, label=f"{label}: linear baseline")
                if p.get("best_hidden_state") is not None:
                    ax.axvline(
                        p["best_hidden_state"], color=color, alpha=0.25, lw=4, label=f"{label}: best on validation"
                    )
        lines += [f"![Structural {TITLES[kind]} by hidden state]({plots.name}/{name})", ""]
    lines += [
        "Hewitt & Manning's structural probes (N19-1419) on the token tree, stacked over hidden states; each "
        "probe's hidden state is chosen on the validation split (mean UUAS, mean NSpr), scores are means over "
        "test snippets with 95% bootstrap intervals; differences are paired over the same test snippets. "
        "Linear: the tree of consecutive tokens (distance |i - j|, depth i). Selectivity: the probe's score minus "
        "the same probe's on the control tree (each token type attaches to the first token, the last token or "
        "its left neighbour, fixed by the seed). `n.d.`: not distinguishable (the interval crosses zero). "
        "`max!`: the best epoch was the last allowed.",
        "",
    ]
    for label, a in sections:
        for kind, p in a.get("probes", {}).items():
            lines += _table(label, a, kind, p)
    return lines


def _table(label: str, a: dict, kind: str, p: dict) -> list[str]:
    first, second = METRICS[kind]
    random = {r["hidden_state"]: r for r in p["baselines"]["random"]}
    control = {r["hidden_state"]: r for r in p["baselines"]["control"]}
    lin = p["baselines"]["linear"]
    lines = [
        f"**{label}**, {TITLES[kind]} (rank {a['rank']}; best hidden state on validation: "
        f"{p['best_hidden_state']}; linear baseline {NAMES[first]} {with_ci(lin.get(first), lin.get(f'{first}_ci'))}, "
        f"{NAMES[second]} {with_ci(lin.get(second), lin.get(f'{second}_ci'))})",
        "",
        f"| hidden state | valid {NAMES[first]} | test {NAMES[first]} | test {NAMES[second]} "
        f"| {NAMES[first]} - linear | {NAMES[first]} - embedding | random weights {NAMES[first]} "
        f"| {NAMES[first]} - random weights | control {NAMES[first]} | selectivity | epoch |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in p["hidden_states"]:
        h = r["hidden_state"]
        rw, ct = random.get(h, {}), control.get(h, {})
        best = " **best**" if h == p["best_hidden_state"] else ""
        lines.append(
            f"| {h}{best} | {number(r.get(f'valid_{first}'))} | {with_ci(r.get(first), r.get(f'{first}_ci'))} | "
            f"{with_ci(r.get(second), r.get(f'{second}_ci'))} | {difference(_of(r, 'minus_linear', first))} | "
            f"{difference(_of(r, 'minus_embedding', first))} | {with_ci(rw.get(first), rw.get(f'{first}_ci'))} | "
            f"{difference(_of(r, 'minus_random_weights', first))} | {with_ci(ct.get(first), ct.get(f'{first}_ci'))} | "
            f"{difference(_of(r, 'selectivity', first))} | {r.get('best_epoch')}{' max!' if r.get('hit_max_epochs') else ''} |"
        )
    lines.append("")
    seconds = a.get("seconds") or {}
    if seconds.get("total") is not None:
        lines += [
            f"Time: {seconds['total']:.0f} s ("
            + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items() if k != "total" and v is not None)
            + ").",
            "",
        ]
    return lines


def _of(row: dict, key: str, metric: str) -> dict | None:
    return (row.get(key) or {}).get(metric)


def best_row(a: dict) -> dict | None:
    """The distance probe's hidden state chosen on validation, with its test scores."""
    p = a.get("probes", {}).get("distance")
    if not p:
        return None
    return next((r for r in p["hidden_states"] if r["hidden_state"] == p["best_hidden_state"]), None)


def _series_values(a: dict, best: dict) -> dict[str, Any]:
    b = a["probes"]["distance"]["baselines"]
    emb, lin = b["embedding"] or {}, b["linear"]
    rw = {r["hidden_state"]: r for r in b["random"]}.get(best["hidden_state"], {})
    return {
        "uuas": best.get("uuas"),
        "uuas_ci": best.get("uuas_ci"),
        "emb": emb.get("uuas"),
        "emb_ci": emb.get("uuas_ci"),
        "linear": lin.get("uuas"),
        "linear_ci": lin.get("uuas_ci"),
        "rw": rw.get("uuas"),
        "rw_ci": rw.get("uuas_ci"),
        "minus_linear": _of(best, "minus_linear", "uuas"),
        "minus_embedding": _of(best, "minus_embedding", "uuas"),
        "selectivity": _of(best, "selectivity", "uuas"),
    }


def _series_row(step: int, best: dict | None, v: dict) -> str:
    return (
        f"| {step} | {(best or {}).get('hidden_state', 'n/a')} | {with_ci(v.get('uuas'), v.get('uuas_ci'))} | "
        f"{with_ci(v.get('linear'), v.get('linear_ci'))} | {with_ci(v.get('emb'), v.get('emb_ci'))} | "
        f"{with_ci(v.get('rw'), v.get('rw_ci'))} | {difference(v.get('minus_linear'))} | "
        f"{difference(v.get('minus_embedding'))} | {difference(v.get('selectivity'))} |"
    )


SERIES = SeriesCurve(
    title="Structural distance probe test UUAS",
    index_name="hidden state",
    index_axis="hidden-states index (0 = embeddings)",
    rows=lambda a: a.get("probes", {}).get("distance", {}).get("hidden_states", []),
    index="hidden_state",
    score="uuas",
    best=best_row,
    values=_series_values,
    curves=(
        ("best hidden state (valid)", "uuas", "uuas_ci", "-", "o"),
        ("linear baseline", "linear", "linear_ci", "--", None),
        ("embeddings", "emb", "emb_ci", "-.", None),
        ("random weights, same hidden state", "rw", "rw_ci", ":", None),
    ),
    table_header=(
        "| step | best hidden state (valid) | test UUAS | linear UUAS | embeddings UUAS | random weights UUAS "
        "| UUAS - linear | UUAS - embedding | selectivity |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ),
    table_row=_series_row,
)

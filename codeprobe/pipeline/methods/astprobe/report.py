"""AST-Probe in the Markdown report (F1 by hidden state and by rank, a table per result) and over
a checkpoint series (its `SeriesCurve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codeprobe.pipeline.registry import SeriesCurve
from codeprobe.pipeline.report.format import difference, number, with_ci
from codeprobe.pipeline.report.plots import axes, curve


def report(sections: list[tuple[str, dict[str, Any]]], plots: Path) -> list[str]:
    """The Markdown section: F1 by hidden state (and by rank) with baselines, and a table per
    result."""
    with axes(
        plots / "astprobe_by_hidden_state.png",
        "AST-Probe test F1 by hidden state (95% bootstrap bands)",
        "hidden-states index (0 = embeddings)",
        "F1",
    ) as ax:
        for label, a in sections:
            color = curve(ax, a["hidden_states"], "hidden_state", "f1", "f1_ci", marker="o", label=label)
            if a["baselines"]["random"]:
                curve(
                    ax,
                    a["baselines"]["random"],
                    "hidden_state",
                    "f1",
                    "f1_ci",
                    color,
                    ls=":",
                    label=f"{label}: random weights",
                )
            emb = a["baselines"]["embedding"]
            if emb and emb.get("f1") is not None:
                ax.axhline(emb["f1"], ls="--", color=color, alpha=0.6, label=f"{label}: embeddings (hidden state 0)")
            if a.get("best_hidden_state") is not None:
                ax.axvline(a["best_hidden_state"], color=color, alpha=0.25, lw=4, label=f"{label}: best on validation")
    lines = ["## AST-Probe", "", f"![AST-Probe F1 by hidden state]({plots.name}/astprobe_by_hidden_state.png)", ""]
    if any(a.get("ranks") and len(a["ranks"]["points"]) > 1 for _, a in sections):
        with axes(plots / "astprobe_by_rank.png", "AST-Probe F1 by rank (best hidden state)", "rank", "F1") as ax:
            ax.set_xscale("log", base=2)
            for label, a in sections:
                if a.get("ranks"):
                    points = sorted(a["ranks"]["points"], key=lambda p: p["rank"])
                    curve(
                        ax,
                        points,
                        "rank",
                        "f1",
                        "f1_ci",
                        marker="o",
                        label=f"{label}, hidden state {a['ranks']['hidden_state']}",
                    )
        lines += [f"![AST-Probe F1 by rank]({plots.name}/astprobe_by_rank.png)", ""]
    lines += [
        "Hidden states (0 = the embeddings) and ranks are chosen on the validation split; F1 is on "
        "the test split. "
        "`n.d.`: not distinguishable (the interval of the difference crosses zero). `max!`: the "
        "best checkpoint was the last epoch allowed (validation loss still falling: under-trained).",
        "",
    ]
    for label, a in sections:
        lines += _table(label, a)
    return lines


def _table(label: str, a: dict) -> list[str]:
    random = {p["hidden_state"]: p for p in a["baselines"]["random"]}
    lines = [
        f"**{label}** (rank {a['rank']}; best hidden state on validation: {a['best_hidden_state']})",
        "",
        "| hidden state | valid F1 | test F1 | random-weights F1 | F1 - embedding | F1 - random weights "
        "| acc c | acc u | d order | epoch |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in a["hidden_states"]:
        rw = random.get(p["hidden_state"], {})
        best = " **best**" if p["hidden_state"] == a["best_hidden_state"] else ""
        lines.append(
            f"| {p['hidden_state']}{best} | {number(p['valid_f1'])} | {with_ci(p['f1'], p.get('f1_ci'))} | "
            f"{with_ci(rw.get('f1'), rw.get('f1_ci'))} | {difference(p.get('minus_embedding'))} | "
            f"{difference(p.get('minus_random_weights'))} | {number(p.get('acc_c'))} | {number(p.get('acc_u'))} | "
            f"{number(p.get('d_pairs'))} | {_epoch(p)} |"
        )
    lines.append("")
    if a.get("ranks"):
        r = a["ranks"]
        lines += [
            f"Rank sweep at hidden state {r['hidden_state']} (best rank on validation: {r['best_rank']}):",
            "",
            "| rank | valid F1 | test F1 | epoch |",
            "|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {p['rank']} | {number(p['valid_f1'])} | {with_ci(p['f1'], p.get('f1_ci'))} | {_epoch(p)} |"
            for p in r["points"]
        ]
        lines.append("")
    if a.get("label_control"):
        lines += _control_table(a["label_control"])
    flagged = [p["hidden_state"] for p in [*a["hidden_states"], *a["baselines"]["random"]] if p.get("hit_max_epochs")]
    if flagged:
        lines += [
            f"Warning: probes at hidden states {sorted(set(flagged))} reached the epoch limit while still "
            "improving; raise `max_epochs`.",
            "",
        ]
    failed = [p["hidden_state"] for p in [*a["hidden_states"], *a["baselines"]["random"]] if p.get("never_improved")]
    if failed:
        lines += [
            f"Warning: probes at hidden states {sorted(set(failed))} never improved on their first epoch "
            "(marked `1 none!`): failed fits, not measurements. With a rank that is a large share "
            'of the model\'s width, try `probe_init: "orthogonal"` (see `TrainConfig.init`).',
            "",
        ]
    return lines


def _control_table(lc: dict) -> list[str]:
    """Task and control label accuracies at the best hidden state, and their selectivity."""
    if "error" in lc:
        return [f"Label control at hidden state {lc['hidden_state']}: none, {lc['error']}.", ""]
    lines = [
        f"Label control at hidden state {lc['hidden_state']} (rank {lc['rank']}; each token type, and each "
        "pair of types for c, gets a fixed random label from the training distribution): accuracy is the "
        "mean over test snippets.",
        "",
        "| label | task acc | control acc | selectivity |",
        "|---|---:|---:|---:|",
    ]
    for label in ("c", "u"):
        x = lc[label]
        lines.append(
            f"| {label} | {with_ci(x['task'], x['task_ci'])} | {with_ci(x['control'], x['control_ci'])} | "
            f"{difference(x['selectivity'])} |"
        )
    return [*lines, ""]


def _epoch(p: dict) -> str:
    epoch = p.get("best_epoch")
    text = "/".join(map(str, epoch)) if isinstance(epoch, list) else str(epoch)
    return text + (" max!" if p.get("hit_max_epochs") else "") + (" none!" if p.get("never_improved") else "")


def best_row(a: dict) -> dict | None:
    """The entry chosen on validation (`best_hidden_state`), with its test scores."""
    return next((p for p in a["hidden_states"] if p["hidden_state"] == a.get("best_hidden_state")), None)


def _series_values(a: dict, best: dict) -> dict[str, Any]:
    rw = {p["hidden_state"]: p for p in a["baselines"]["random"]}.get(best["hidden_state"], {})
    emb = a["baselines"]["embedding"] or {}
    return {
        "f1": best.get("f1"),
        "f1_ci": best.get("f1_ci"),
        "emb": emb.get("f1"),
        "emb_ci": emb.get("f1_ci"),
        "rw": rw.get("f1"),
        "rw_ci": rw.get("f1_ci"),
        "minus_embedding": best.get("minus_embedding"),
        "minus_random_weights": best.get("minus_random_weights"),
    }


def _series_row(step: int, best: dict | None, v: dict) -> str:
    return (
        f"| {step} | {(best or {}).get('hidden_state', 'n/a')} | {with_ci(v.get('f1'), v.get('f1_ci'))} | "
        f"{with_ci(v.get('emb'), v.get('emb_ci'))} | {with_ci(v.get('rw'), v.get('rw_ci'))} | "
        f"{difference(v.get('minus_embedding'))} | {difference(v.get('minus_random_weights'))} |"
    )


SERIES = SeriesCurve(
    title="AST-Probe test F1",
    index_name="hidden state",
    index_axis="hidden-states index (0 = embeddings)",
    rows=lambda a: a["hidden_states"],
    index="hidden_state",
    score="f1",
    best=best_row,
    values=_series_values,
    curves=(
        ("best hidden state (valid)", "f1", "f1_ci", "-", "o"),
        ("embeddings", "emb", "emb_ci", "--", None),
        ("random weights, same hidden state", "rw", "rw_ci", ":", None),
    ),
    table_header=(
        "| step | best hidden state (valid) | test F1 | embeddings F1 | random weights F1 (same hidden state) "
        "| F1 - embedding | F1 - random weights |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ),
    table_row=_series_row,
)

"""The diagnostic classifiers in the Markdown report (per task: task and control accuracy by
hidden state with bands and baselines, and a table with intervals, selectivity and MDL) and over
a checkpoint series (its `SeriesCurve`: the followed task's accuracy at the hidden state chosen on
validation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codeprobe.pipeline.registry import SeriesCurve
from codeprobe.pipeline.report.format import difference, number, with_ci
from codeprobe.pipeline.report.plots import axes, curve

TASK_NAMES = {"parent_type": "parent node type", "depth_bucket": "depth bucket"}


def followed(a: dict[str, Any]) -> dict[str, Any]:
    """The task a checkpoint series follows: parent type where it ran, else the first task."""
    tasks = a["tasks"]
    return tasks.get("parent_type") or next(iter(tasks.values()))


def report(sections: list[tuple[str, dict[str, Any]]], plots: Path) -> list[str]:
    """The Markdown section: a figure per task, then a table per result and task."""
    lines = ["## Diagnostic classifiers", ""]
    tasks = list(dict.fromkeys(t for _, a in sections for t in a["tasks"]))
    for task in tasks:
        name = f"diagnostic_{task}_by_hidden_state.png"
        with axes(
            plots / name,
            f"Diagnostic classifier ({TASK_NAMES.get(task, task)}): test accuracy (95% bootstrap bands)",
            "hidden-states index (0 = embeddings)",
            "accuracy",
        ) as ax:
            for label, a in sections:
                t = a["tasks"].get(task)
                if t is None:
                    continue
                rows = t["hidden_states"]
                color = curve(ax, rows, "hidden_state", "accuracy", "accuracy_ci", marker="o", label=f"{label}: task")
                if any("control_accuracy" in r for r in rows):
                    curve(ax, rows, "hidden_state", "control_accuracy", "control_accuracy_ci", color, ls=":",
                          marker="x", label=f"{label}: control task")  # fmt: skip
                if any("random_weights_accuracy" in r for r in rows):
                    curve(ax, rows, "hidden_state", "random_weights_accuracy", "random_weights_accuracy_ci", color,
                          ls="-.", label=f"{label}: random weights")  # fmt: skip
                majority = t["baselines"]["majority"]["accuracy"]
                ax.axhline(majority, ls="--", color=color, alpha=0.6, label=f"{label}: majority class")
                ax.axvline(t["best_hidden_state"], color=color, alpha=0.25, lw=4, label=f"{label}: best on validation")
        lines += [f"![Diagnostic classifier, {TASK_NAMES.get(task, task)}]({plots.name}/{name})", ""]
    lines += [
        "A linear (softmax) classifier per hidden state on the token vectors AST-Probe caches "
        "(docs/diagnostic.md): the token's parent node type or its depth bucket in the token tree; "
        "the control task gives each token type a random label from the same distribution (Hewitt "
        "& Liang); selectivity = task - control accuracy, paired over the test snippets. "
        "Accuracy is the mean over test snippets of each one's share of tokens labelled right; the "
        "hidden state is chosen on validation. MDL: the online codelength of the training labels "
        "(Voita & Titov), bits, and the compression uniform / online, of the task and its control. "
        "`n.d.`: not distinguishable (the interval of the difference crosses zero). `max!`: the best "
        "epoch was the last allowed (validation loss still falling: raise `diagnostic.max_epochs`).",
        "",
    ]
    for label, a in sections:
        for task, t in a["tasks"].items():
            lines += _table(label, task, t)
        seconds, cpu = (a.get("seconds") or {}).get("total"), (a.get("cpu_seconds") or {}).get("total")
        if seconds is not None:
            cpu_text = f", {cpu:.0f} s of CPU time" if cpu is not None else ""
            lines += [
                f"Time taken by the steps ({label}; summed, the two tasks' steps may run at once): {seconds:.0f} s"
                f"{cpu_text} (" + _seconds(a["seconds"]) + ").",
                "",
            ]
    return lines


def _seconds(seconds: dict[str, float | None]) -> str:
    return ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items() if k != "total" and v is not None)


def _table(label: str, task: str, t: dict[str, Any]) -> list[str]:
    m = t["baselines"]["majority"]
    lines = [
        f"**{label}, {TASK_NAMES.get(task, task)}** ({t['n_classes']} classes; best hidden state on validation: "
        f"{t['best_hidden_state']}; majority class `{m['class']}`: {with_ci(m['accuracy'], m['accuracy_ci'])})",
        "",
        "| hidden state | valid acc | test acc | control acc | selectivity | acc - embedding | acc - majority "
        "| acc - random weights | MDL bits (compression) | control MDL bits (compression) | epoch |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in t["hidden_states"]:
        best = " **best**" if r["hidden_state"] == t["best_hidden_state"] else ""
        lines.append(
            f"| {r['hidden_state']}{best} | {number(r['valid_accuracy'])} | {with_ci(r['accuracy'], r['accuracy_ci'])} | "
            f"{with_ci(r.get('control_accuracy'), r.get('control_accuracy_ci'))} | {difference(r.get('selectivity'))} | "
            f"{difference(r.get('minus_embedding'))} | {difference(r.get('minus_majority'))} | "
            f"{difference(r.get('minus_random_weights'))} | {_mdl(r.get('mdl'), '')} | {_mdl(r.get('mdl'), 'control_')} | "
            f"{r['best_epoch']}{' max!' if r.get('hit_max_epochs') else ''} |"
        )
    return [*lines, ""]


def _mdl(mdl: dict[str, Any] | None, prefix: str) -> str:
    if not mdl or mdl.get(f"{prefix}online_bits") is None:
        return ""
    return f"{mdl[f'{prefix}online_bits']:,.0f} ({mdl[f'{prefix}compression']:.2f}x)"


def best_row(a: dict[str, Any]) -> dict[str, Any] | None:
    """The followed task's row at its hidden state chosen on validation."""
    t = followed(a)
    return next((r for r in t["hidden_states"] if r["hidden_state"] == t["best_hidden_state"]), None)


def _series_values(a: dict[str, Any], best: dict[str, Any]) -> dict[str, Any]:
    t = followed(a)
    emb = t["baselines"]["embedding"] or {}
    majority = t["baselines"]["majority"]
    return {
        "acc": best.get("accuracy"),
        "acc_ci": best.get("accuracy_ci"),
        "ctl": best.get("control_accuracy"),
        "ctl_ci": best.get("control_accuracy_ci"),
        "emb": emb.get("accuracy"),
        "emb_ci": emb.get("accuracy_ci"),
        "maj": majority["accuracy"],
        "maj_ci": majority["accuracy_ci"],
        "selectivity": best.get("selectivity"),
        "minus_embedding": best.get("minus_embedding"),
    }


def _series_row(step: int, best: dict[str, Any] | None, v: dict[str, Any]) -> str:
    return (
        f"| {step} | {(best or {}).get('hidden_state', 'n/a')} | {with_ci(v.get('acc'), v.get('acc_ci'))} | "
        f"{with_ci(v.get('ctl'), v.get('ctl_ci'))} | {with_ci(v.get('emb'), v.get('emb_ci'))} | "
        f"{with_ci(v.get('maj'), v.get('maj_ci'))} | {difference(v.get('selectivity'))} | "
        f"{difference(v.get('minus_embedding'))} |"
    )


SERIES = SeriesCurve(
    title="Diagnostic classifier test accuracy",
    index_name="hidden state",
    index_axis="hidden-states index (0 = embeddings)",
    rows=lambda a: followed(a)["hidden_states"],
    index="hidden_state",
    score="accuracy",
    best=best_row,
    values=_series_values,
    curves=(
        ("best hidden state (valid)", "acc", "acc_ci", "-", "o"),
        ("control task, same hidden state", "ctl", "ctl_ci", ":", None),
        ("embeddings", "emb", "emb_ci", "--", None),
        ("majority class", "maj", "maj_ci", "-.", None),
    ),
    table_header=(
        "| step | best hidden state (valid) | test accuracy | control accuracy | embeddings accuracy "
        "| majority class | selectivity | accuracy - embedding |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ),
    table_row=_series_row,
)

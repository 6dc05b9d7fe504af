"""The diagnostic classifiers' section of summary.json: per task, every hidden state's test
accuracy and its control task's with 95% bootstrap intervals, selectivity and the differences to
the baselines with paired intervals, the hidden state chosen on validation, and the online codes."""

from __future__ import annotations

from typing import Any

import numpy as np

from codeprobe.files import read_json
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.methods.diagnostic.steps import best_hidden_state
from codeprobe.pipeline.runfolder import ResultFolder
from codeprobe.uncertainty import mean_ci, paired_difference


def tasks_in(folder: ResultFolder) -> list[str]:
    """The tasks whose fit this folder holds, in the order `LABEL_TASKS` names them."""
    from codeprobe.probes.diagnostic import LABEL_TASKS

    return [t for t in LABEL_TASKS if folder.file(f"{t}.json").exists()]


def per_snippet_accuracy(fit: dict[str, Any], kind: str = "task") -> np.ndarray:
    """float64 (n_test, S): each test snippet's accuracy at each hidden state of the fit
    (`kind` "task" or "control")."""
    correct = np.asarray(fit["fits"][kind]["test_correct"], dtype=np.float64).T
    return correct / np.asarray(fit["test_tokens"], dtype=np.float64)[:, None]


def summarize(folder: ResultFolder, cfg: RunConfig) -> dict[str, Any] | None:
    """The section: `tasks` (per task: `hidden_states` rows, `best_hidden_state`, `baselines`,
    `mdl`), `selection` ("validation"), `splits`, `tokens`, `inputs`, `training`, `seconds`
    (each step's wall-clock time, recorded when it ran, and the total: the steps of the two
    tasks may run at once) and `cpu_seconds` (the same in the steps' CPU time, less sensitive
    to a busy machine). None: no fit in the folder."""
    names = tasks_in(folder)
    if not names:
        return None
    tasks, seconds, cpu = {}, {}, {}
    for task in names:
        fit = read_json(folder.file(f"{task}.json"))
        random = folder.file(f"{task}.random.json")
        random = read_json(random) if random.exists() else None
        mdl = folder.file(f"{task}.mdl.json")
        mdl = read_json(mdl) if mdl.exists() else None
        tasks[task] = _task(fit, random, mdl)
        for step, out in ((f"{task} fit", fit), (f"{task} random weights", random), (f"{task} mdl", mdl)):
            if out is not None:
                seconds[step], cpu[step] = out.get("seconds"), out.get("cpu_seconds")
    first = read_json(folder.file(f"{names[0]}.json"))
    for times in (seconds, cpu):
        times["total"] = round(sum(v for v in times.values() if v is not None), 1)
    return {
        "selection": "validation",
        "tasks": tasks,
        "splits": first.get("splits"),
        "tokens": first.get("tokens"),
        "inputs": _inputs(first),
        "training": _training(cfg),
        "seconds": seconds,
        "cpu_seconds": cpu,
    }


def _training(cfg: RunConfig) -> dict[str, Any] | None:
    if cfg.diagnostic is None:
        return None
    d = cfg.diagnostic
    return {"lr": d.lr, "max_epochs": d.max_epochs, "patience": d.patience, "min_count": d.min_count, "seed": cfg.seed}


def _task(fit: dict[str, Any], random: dict[str, Any] | None, mdl: dict[str, Any] | None) -> dict[str, Any]:
    states = fit["hidden_states"]
    task = per_snippet_accuracy(fit, "task")
    control = per_snippet_accuracy(fit, "control") if "control" in fit["fits"] else None
    majority = np.asarray(fit["majority"]["test_correct"], float) / np.asarray(fit["test_tokens"], float)
    rand = per_snippet_accuracy(random, "task") if random else None
    codes = _codes(mdl)
    rows = []
    for k, h in enumerate(states):
        seed = 1000 + h
        row: dict[str, Any] = {
            "hidden_state": h,
            "valid_accuracy": fit["fits"]["task"]["valid_accuracy"][k],
            "accuracy": float(task[:, k].mean()),
            "accuracy_ci": mean_ci(task[:, k], random_state=seed).as_list(),
            "token_accuracy": float(np.sum(fit["fits"]["task"]["test_correct"][k]) / np.sum(fit["test_tokens"])),
            "best_epoch": fit["fits"]["task"]["best_epoch"][k],
            "hit_max_epochs": fit["fits"]["task"]["hit_max_epochs"][k],
            "minus_majority": paired_difference(task[:, k], majority, random_state=seed).as_dict(),
        }
        if h != 0 and 0 in states:
            row["minus_embedding"] = paired_difference(
                task[:, k], task[:, states.index(0)], random_state=seed
            ).as_dict()
        if control is not None:
            row.update(
                control_valid_accuracy=fit["fits"]["control"]["valid_accuracy"][k],
                control_accuracy=float(control[:, k].mean()),
                control_accuracy_ci=mean_ci(control[:, k], random_state=seed + 1).as_list(),
                control_best_epoch=fit["fits"]["control"]["best_epoch"][k],
                selectivity=paired_difference(task[:, k], control[:, k], random_state=seed).as_dict(),
            )
        if rand is not None and h in random["hidden_states"]:
            r = rand[:, random["hidden_states"].index(h)]
            row["random_weights_accuracy"] = float(r.mean())
            row["random_weights_accuracy_ci"] = mean_ci(r, random_state=seed + 2).as_list()
            row["minus_random_weights"] = paired_difference(task[:, k], r, random_state=seed).as_dict()
        if h in codes:
            row["mdl"] = codes[h]
        rows.append(row)
    return {
        "n_classes": len(fit["classes"]),
        "classes": fit["classes"],
        "best_hidden_state": best_hidden_state(fit),
        "hidden_states": rows,
        "baselines": {
            "majority": {
                "class": fit["majority"]["class"],
                "accuracy": float(majority.mean()),
                "accuracy_ci": mean_ci(majority, random_state=999).as_list(),
            },
            "embedding": next((r for r in rows if r["hidden_state"] == 0), None),
            "random_model": (random or {}).get("model", {}).get("name"),
        },
        "mdl": None if mdl is None else {"hidden_states": mdl["hidden_states"], "n_tokens": _mdl_tokens(mdl)},
    }


def _codes(mdl: dict[str, Any] | None) -> dict[int, dict[str, Any]]:
    """hidden state -> its online codes: bits and compression of the task (and its control)."""
    if mdl is None:
        return {}
    out: dict[int, dict[str, Any]] = {}
    for k, h in enumerate(mdl["hidden_states"]):
        entry: dict[str, Any] = {}
        for kind, code in mdl["codes"].items():
            prefix = "" if kind == "task" else "control_"
            entry[f"{prefix}online_bits"] = code["online_bits"][k]
            entry[f"{prefix}uniform_bits"] = code["uniform_bits"]
            entry[f"{prefix}compression"] = code["compression"][k]
        out[h] = entry
    return out


def _mdl_tokens(mdl: dict[str, Any]) -> int:
    return int(mdl["codes"]["task"]["boundaries"][-1])


def _inputs(fit: dict[str, Any]) -> dict[str, Any]:
    """What entered the classifiers (`codeprobe.pipeline.summary.input_lines` shows it)."""
    dropped: dict[str, int] = {}
    for reasons in (fit.get("dropped") or {}).values():
        for reason, n in reasons.items():
            dropped[reason] = dropped.get(reason, 0) + int(n)
    used = sum(fit["splits"].values())
    return {
        "snippets": used + sum(dropped.values()),
        "used": used,
        "used_as": "classified (" + ", ".join(f"{name} {n}" for name, n in fit["splits"].items()) + ")",
        "dropped": dropped,
        "truncated": None,
        "max_subwords": fit.get("max_subwords"),
    }


def model_info(folder: ResultFolder) -> dict[str, Any] | None:
    names = tasks_in(folder)
    return read_json(folder.file(f"{names[0]}.json")).get("model") if names else None

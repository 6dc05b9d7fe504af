"""AST-Probe's section of summary.json: scores per hidden state averaged over seeds, with their
intervals and paired differences to the baselines, and the choices made on validation."""

from __future__ import annotations

from typing import Any

import numpy as np

from codeprobe.files import read_json
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.methods.astprobe.snippets import seed_mean
from codeprobe.pipeline.runfolder import ResultFolder
from codeprobe.probes.astprobe.sweeps import select_on_validation
from codeprobe.probes.diagnostic.evaluation import AccuracyEvaluation, selectivity
from codeprobe.uncertainty import mean_ci, paired_difference

_SCORES = (
    "precision",
    "recall",
    "f1",
    "acc_c",
    "acc_u",
    "d_pairs",
    "valid_f1",
    "valid_precision",
    "valid_recall",
    "valid_acc_c",
    "valid_acc_u",
    "valid_d_pairs",
)


def summarize(folder: ResultFolder, cfg: RunConfig) -> dict[str, Any] | None:
    """AST-Probe's section: `hidden_states` (per hidden state, 0 = embeddings: test scores,
    `f1_ci`, `valid_f1`, training facts and paired differences to the embeddings and to the
    random-weights model at the same hidden state), `best_hidden_state` and `selection`
    ("validation"), `baselines` (`embedding`, `random`), `ranks` (the rank sweep at the best
    one, its best rank chosen on validation too), `label_control` (see `_label_control`)."""
    if not folder.file("hidden_states.json").exists():
        return None
    real = read_json(folder.file("hidden_states.json"))
    random = read_json(folder.file("random.json")) if folder.file("random.json").exists() else None
    ranks = read_json(folder.file("ranks.json")) if folder.file("ranks.json").exists() else None
    chosen = cfg.astprobe.hidden_states if cfg.astprobe else ()
    rows = _aggregate(real)
    random_rows = {p["hidden_state"]: p for p in _aggregate(random)} if random else {}
    embedding = next((p for p in rows if p["hidden_state"] == 0), None)
    for p in rows:
        if embedding is not None and p["hidden_state"] != 0:
            p["minus_embedding"] = _paired(p, embedding)
        if p["hidden_state"] in random_rows:
            p["minus_random_weights"] = _paired(p, random_rows[p["hidden_state"]])
    best = select_on_validation(real["points"], "hidden_state", among=chosen or None)
    out = {
        "rank": cfg.astprobe.rank if cfg.astprobe else None,
        "selection": "validation",
        "best_hidden_state": best,
        "hidden_states": [_public(p) for p in rows if not chosen or p["hidden_state"] in chosen],
        "baselines": {
            "embedding": _public(embedding) if embedding else None,
            "random": [_public(p) for p in random_rows.values()],
            "random_model": (random or {}).get("model", {}).get("name"),
        },
        "ranks": None,
        "splits": real.get("splits"),
        "dropped": real.get("dropped"),
        "max_subwords": real.get("max_subwords"),
        "inputs": _inputs(real),
        "hidden_states_reused": real.get("hidden_states_reused", 0),
        "training": {**cfg.train_config().settings(), "seeds": cfg.astprobe.probe_seeds if cfg.astprobe else 1},
        "label_control": _label_control(folder),
    }
    if ranks is not None and best is not None:
        swept = {"points": ranks["points"] + [p for p in real["points"] if p["hidden_state"] == best]}
        points = sorted(_aggregate(swept), key=lambda p: p["rank"])
        out["ranks"] = {
            "hidden_state": best,
            "selection": "validation",
            "best_rank": select_on_validation(swept["points"], "rank"),
            "points": [_public(p) for p in points],
        }
    return out


def _label_control(folder: ResultFolder) -> dict[str, Any] | None:
    """The label control (`control`, type-keyed, see docs/astprobe-results.md) at the best hidden
    state: per label (c, u), the task probe's (first seed) and the control probe's test accuracy
    (mean over snippets) with 95% bootstrap intervals, and the selectivity task - control with its
    paired interval over the same snippets, and the seconds the control cost (`error` instead of
    accuracies if the control probe diverged); None when the run has none."""
    path = folder.file("label_control.json")
    if not path.exists():
        return None
    saved = read_json(path)
    out: dict[str, Any] = {
        "hidden_state": saved["hidden_state"],
        "rank": saved["rank"],
        "convention": "type-keyed",
        "control_epochs": saved.get("control_epochs"),
        "control_best_epoch": saved.get("control_best_epoch"),
        "seconds": saved["seconds"],
    }
    if "error" in saved:  # the control probe diverged: no accuracies
        return {**out, "error": saved["error"]}
    for k, label in enumerate(("c", "u")):
        task, control = (
            AccuracyEvaluation(
                np.asarray(saved[f"{which}_{label}"]["correct"]), np.asarray(saved[f"{which}_{label}"]["tokens"])
            )
            for which in ("task", "control")
        )
        seed = saved["hidden_state"] * 1000 + k
        out[label] = {
            "task": task.accuracy,
            "task_ci": task.interval(random_state=seed).as_list(),
            "control": control.accuracy,
            "control_ci": control.interval(random_state=seed).as_list(),
            "selectivity": selectivity(task, control, random_state=seed).as_dict(),
        }
    return out


def _inputs(real: dict[str, Any]) -> dict[str, Any] | None:
    """What entered the probes (`codeprobe.pipeline.summary.input_lines` shows it): the
    snippets, how many were probed per split, and how many were dropped, by reason
    (`does_not_fit_model`: longer than the input limit `max_subwords`)."""
    splits = real.get("splits")
    if not splits:
        return None
    dropped: dict[str, int] = {}
    for reasons in (real.get("dropped") or {}).values():
        for reason, n in reasons.items():
            dropped[reason] = dropped.get(reason, 0) + int(n)
    used = sum(splits.values())
    return {
        "snippets": used + sum(dropped.values()),
        "used": used,
        "used_as": "probed (" + ", ".join(f"{name} {n}" for name, n in splits.items()) + ")",
        "dropped": dropped,
        "truncated": None,
        "max_subwords": real.get("max_subwords"),
    }


def model_info(folder: ResultFolder) -> dict[str, Any] | None:
    path = folder.file("hidden_states.json")
    return read_json(path).get("model") if path.exists() else None


def _aggregate(swept: dict | None) -> list[dict]:
    """One entry per (hidden state, rank) of a sweep's points: scores averaged over seeds, the
    per-snippet test F1 averaged over seeds (for intervals and pairing), and the seeds' spread."""
    if not swept:
        return []
    ids = swept.get("test_ids")
    groups: dict[tuple[int, int], list[dict]] = {}
    for p in swept["points"]:
        groups.setdefault((p["hidden_state"], p["rank"]), []).append(p)
    out = []
    for (hidden_state, rank), ps in sorted(groups.items()):
        ok = [p for p in ps if not p["diverged"]]
        entry: dict[str, Any] = {
            "hidden_state": hidden_state,
            "rank": rank,
            "seeds": len(ps),
            "diverged": not ok,
            "best_epoch": [p["best_epoch"] for p in ps] if len(ps) > 1 else ps[0]["best_epoch"],
            "hit_max_epochs": any(p.get("hit_max_epochs") for p in ps),
            "never_improved": any(p.get("never_improved") for p in ps),
            "max_epochs": ps[0].get("max_epochs"),
        }
        for k in _SCORES:
            vals = [p[k] for p in ok if p.get(k) is not None]
            entry[k] = float(np.mean(vals)) if vals else None
        if ok:
            per = seed_mean(ok)
            entry["_per_snippet"] = dict(zip(ids, per)) if ids else None
            entry["f1_ci"] = mean_ci(per, random_state=hidden_state * 1000 + rank).as_list()
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
    diff = paired_difference(
        [pa[i] for i in common], [pb[i] for i in common], random_state=a["hidden_state"] * 1000 + a["rank"]
    )
    return diff.as_dict()


def _public(p: dict) -> dict:
    return {k: v for k, v in p.items() if not k.startswith("_")}

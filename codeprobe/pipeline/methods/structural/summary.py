"""The structural probes' section of summary.json: per probe and hidden state, the test scores
(means over snippets with 95% bootstrap intervals), the hidden state chosen on validation, and
every baseline on the same test snippets with the paired interval of the difference: the linear
baseline, the embedding layer, the random-weights model and the control tree (selectivity)."""

from __future__ import annotations

from typing import Any

import numpy as np

from codeprobe.files import read_json
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.methods.structural.steps import FILES, KINDS, best_on_validation
from codeprobe.pipeline.runfolder import ResultFolder
from codeprobe.probes.structural import length_macro_average, qualifying_lengths
from codeprobe.probes.structural.control import BEHAVIOURS
from codeprobe.uncertainty import mean_ci, paired_difference

# The per-snippet metrics of each probe, the first its headline (what selection reads).
METRICS = {"distance": ("uuas", "dspr"), "depth": ("nspr", "root_accuracy")}
# The metrics also macro-averaged over snippet lengths (the reference's DSpr and NSpr).
BY_LENGTH = ("dspr", "nspr")
CONTROL_NOTE = (
    "control tree (Hewitt & Liang, arXiv:1909.03368): each token type attaches, fixed by the seed, to the "
    f"{', '.join(BEHAVIOURS[:2])} token or its {BEHAVIOURS[2]} neighbour; the first token is the root and the "
    "last attaches to it"
)


def summarize(folder: ResultFolder, cfg: RunConfig) -> dict[str, Any] | None:
    """The structural probes' section: `probes` ({"distance", "depth"}: `best_hidden_state`
    (chosen on validation), `hidden_states` (per hidden state, 0 = embeddings: each metric's test
    mean and `<metric>_ci`, `valid_<metric>`, training facts, and the paired differences
    `minus_linear`, `minus_embedding`, `minus_random_weights` and `selectivity` (task - control)
    where the baseline was measured there), `baselines` (`linear`, `embedding`, `random`,
    `control`)), the splits and inputs, the training settings, and `seconds` and `cpu_seconds`
    per step (wall-clock, and this process's CPU time: less sensitive to a busy machine), each
    with its total."""
    if not folder.file(FILES["task"]).exists():
        return None
    task = read_json(folder.file(FILES["task"]))
    others = {
        role: read_json(folder.file(FILES[role])) for role in ("control", "random") if folder.file(FILES[role]).exists()
    }
    s = cfg.structural
    chosen = list(s.hidden_states) if s else []
    lengths = np.asarray(task["test_lengths"], dtype=np.int64)
    probes = {}
    for kind in (k for k in KINDS if k in task):
        rows = [_row(kind, p["test"], lengths, p) for p in task[kind]["points"]]
        linear = _row(kind, task["linear"][kind], lengths)
        baselines = {
            role: [_row(kind, p["test"], lengths, p) for p in o.get(kind, {}).get("points", [])]
            for role, o in others.items()
        }
        by_state = {role: {r["hidden_state"]: r for r in b} for role, b in baselines.items()}
        embedding = next((r for r in rows if r["hidden_state"] == 0), None)
        for r in rows:
            h = r["hidden_state"]
            r["minus_linear"] = _paired(kind, r, linear, h)
            if embedding is not None and h != 0:
                r["minus_embedding"] = _paired(kind, r, embedding, h)
            if h in by_state.get("random", {}):
                r["minus_random_weights"] = _paired(kind, r, by_state["random"][h], h)
            if h in by_state.get("control", {}):
                r["selectivity"] = _paired(kind, r, by_state["control"][h], h)
        probes[kind] = {
            "metrics": list(METRICS[kind]),
            "best_hidden_state": best_on_validation(task[kind]["points"], kind, among=chosen or None),
            "hidden_states": [_public(r) for r in rows if not chosen or r["hidden_state"] in chosen],
            "baselines": {
                "linear": _public(linear),
                "embedding": _public(embedding) if embedding else None,
                "random": [_public(r) for r in baselines.get("random", [])],
                "control": [_public(r) for r in baselines.get("control", [])],
            },
            "fit_seconds": {role: o[kind]["fit_seconds"] for role, o in (("task", task), *others.items()) if kind in o},
        }
    steps = {"task": task, **others}
    seconds = {role: o.get("seconds") for role, o in steps.items()}
    cpu = {role: o.get("cpu_seconds") for role, o in steps.items()}
    return {
        "rank": s.rank if s else None,
        "target": s.target if s else None,
        "selection": "validation",
        "probes": probes,
        "control": CONTROL_NOTE if "control" in others else None,
        "random_model": others.get("random", {}).get("model", {}).get("name"),
        "splits": task.get("splits"),
        "dropped": task.get("dropped"),
        "inputs": _inputs(task),
        "hidden_states_reused": task.get("hidden_states_reused", 0),
        "training": _training(s),
        "seconds": {**seconds, "total": _total(seconds)},
        "cpu_seconds": {**cpu, "total": _total(cpu)},
    }


def _total(seconds: dict[str, float | None]) -> float:
    return round(sum(v for v in seconds.values() if v is not None), 1)


def _training(s) -> dict[str, Any] | None:
    if s is None:
        return None
    return {k: getattr(s, k) for k in ("rank", "lr", "batch_size", "max_epochs", "patience", "batching")}


def _row(
    kind: str, scores: dict[str, list], lengths: np.ndarray, point: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One row: each metric's test mean over snippets and its interval (seeded by the hidden
    state), the length macro averages, the corpus UUAS, validation means and training facts; the
    per-snippet values under `_per` (for pairing, not written)."""
    h = point["hidden_state"] if point else None
    row: dict[str, Any] = {"hidden_state": h} if point else {}
    per = {m: _floats(scores[m]) for m in METRICS[kind]}
    for k, (metric, values) in enumerate(per.items()):
        ci = mean_ci(values, random_state=(h or 0) * 1000 + k)
        row[metric] = _num(ci.mean)
        row[f"{metric}_ci"] = ci.as_list()
        if metric in BY_LENGTH:
            scored = np.isfinite(values)
            over = qualifying_lengths(lengths[scored])
            row[f"{metric}_by_length"] = _num(length_macro_average(values[scored], lengths[scored], over).value)
    if kind == "distance":
        correct = np.asarray(scores["uuas_correct"], dtype=np.int64)
        row["uuas_corpus"] = _num(correct.sum() / max(int((lengths - 1).sum()), 1))
    if point:
        row.update({f"valid_{m}": point["valid"].get(m) for m in METRICS[kind]})
        row.update({k: point[k] for k in ("best_epoch", "epochs", "hit_max_epochs")})
    row["_per"] = per
    return row


def _paired(kind: str, a: dict, b: dict, hidden_state: int) -> dict[str, Any]:
    """a's test scores minus b's on the same snippets, per metric, with paired intervals."""
    return {
        m: paired_difference(a["_per"][m], b["_per"][m], random_state=hidden_state * 1000 + k).as_dict()
        for k, m in enumerate(METRICS[kind])
    }


def _inputs(task: dict[str, Any]) -> dict[str, Any] | None:
    """What entered the probes (`codeprobe.pipeline.summary.input_lines` shows it)."""
    splits = task.get("splits")
    if not splits:
        return None
    dropped: dict[str, int] = {}
    for reasons in (task.get("dropped") or {}).values():
        for reason, n in reasons.items():
            dropped[reason] = dropped.get(reason, 0) + int(n)
    used = sum(splits.values())
    return {
        "snippets": used + sum(dropped.values()),
        "used": used,
        "used_as": "probed (" + ", ".join(f"{name} {n}" for name, n in splits.items()) + ")",
        "dropped": dropped,
        "truncated": None,
        "max_subwords": task.get("max_subwords"),
    }


def model_info(folder: ResultFolder) -> dict[str, Any] | None:
    path = folder.file(FILES["task"])
    return read_json(path).get("model") if path.exists() else None


def _floats(values: list) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _public(r: dict) -> dict:
    return {k: v for k, v in r.items() if not k.startswith("_")}

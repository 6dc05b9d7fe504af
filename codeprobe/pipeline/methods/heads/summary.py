"""Attention-head relations' section of summary.json: per relation and shown score, the head
chosen on validation with its test top-k accuracies, the best baseline and the paired
difference; the means over relations with their intervals; the relation x layer map."""

from __future__ import annotations

from typing import Any

from codeprobe.files import read_json
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.runfolder import ResultFolder

DECODER_NOTE = (
    "a decoder's attention looks left only: head->dep edges whose dependent lies right of the head "
    "token cannot be scored (most cannot), so dep->head is the direction that exists"
)


def shown_scores(dependent: str) -> tuple[tuple[str, str], ...]:
    """The (direction, dependent) pairs the summary and reports show: head->dep on the
    configured dependent token, and dep->head (from the dependent's first token)."""
    return (("head->dep", dependent), ("dep->head", "first"))


def summarize(folder: ResultFolder, cfg: RunConfig) -> dict[str, Any] | None:
    """The section: `scores` (per shown (direction, dependent): its `relations` rows, one per
    relation with `k` -> {layer, head, validation, test, baselines, best_baseline,
    difference, differences, beats_all, rules} and `by_layer` (k = 1: each layer's best head on
    test), and `summary` per k (means over relations with intervals, share beating every
    baseline)); `headline` (the first k of the direction that exists: head->dep, or dep->head
    for a decoder); `sas`; `inputs`; `rare_relations` (left out: fewer than `min_count` edges);
    the settings."""
    path = folder.file("summary.json")
    if not path.exists():
        return None
    s = read_json(path)
    result, settings = s["result"], s["settings"]
    shown = shown_scores(settings["dependent"])
    counts = {r["name"]: r["edges"] for r in s["relations"]}
    scores = []
    for direction, dependent in shown:
        rows: dict[str, dict[str, Any]] = {}
        for r in result["scores"]:
            if (r["direction"], r["dependent"]) != (direction, dependent):
                continue
            row = rows.setdefault(
                r["name"],
                {
                    "relation": r["name"],
                    "edges": counts.get(r["name"]),
                    "validation_edges": r["validation_edges"],
                    "test_edges": r["test_edges"],
                    "k": {},
                },
            )
            row["k"][str(r["k"])] = {
                key: r[key]
                for key in (
                    "layer",
                    "head",
                    "validation",
                    "test",
                    "baselines",
                    "best_baseline",
                    "difference",
                    "differences",
                    "beats_all",
                    "rules",
                    "random_head",
                    "random_weights_head",
                )
            }
            if r["k"] == settings["ks"][0]:
                row["by_layer"] = r["by_layer"]
        summary = {
            str(x["k"]): x for x in result["summary"] if (x["direction"], x["dependent"]) == (direction, dependent)
        }
        scores.append(
            {"direction": direction, "dependent": dependent, "relations": list(rows.values()), "summary": summary}
        )
    causal = bool(settings["causal"])
    headline = scores[1 if causal else 0]
    first_k = str(settings["ks"][0])
    return {
        "scores": scores,
        "headline": {
            "direction": headline["direction"],
            "dependent": headline["dependent"],
            **headline["summary"].get(first_k, {"k": settings["ks"][0], "n_relations": 0}),
        },
        "sas": result["sas"],
        "n_layers": s["model"].get("n_layers"),
        "causal": causal,
        "notes": [DECODER_NOTE] if causal else [],
        "inputs": s["inputs"],
        "rare_relations": s["rare_relations"],
        "settings": {
            "ks": settings["ks"],
            "min_count": settings["min_count"],
            "max_offset": settings["max_offset"],
            "keywords": len(settings["keywords"]),
            "random_weights": settings["random_weights"],
            "max_subwords": settings["max_subwords"],
            "selection": result["settings"]["selection"],
            "confidence": result["settings"]["confidence"],
            "n_resamples": result["settings"]["n_resamples"],
            "exclude_self": result["settings"]["exclude_self"],
        },
    }


def model_info(folder: ResultFolder) -> dict[str, Any] | None:
    path = folder.file("summary.json")
    return read_json(path).get("model") if path.exists() else None

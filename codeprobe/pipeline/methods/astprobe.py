"""AST-Probe (Hernández López et al., ASE 2022, arXiv:2206.11719) as a method of a run: the
sweep over hidden states (selected on validation), the random-weights baseline, the rank sweep at
the selected hidden state; its summary section, report section and checkpoint-series curve.

    RUN/astprobe/<model>/<language>-<dataset>/layers.json   the sweep over hidden states
                                              random.json   the random-weights model's sweep
                                              ranks.json    the rank sweep at the best one
                                              probes/       the fitted probes (safetensors)
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from codeprobe.files import read_json
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.data import read_snippets, read_splits
from codeprobe.pipeline.registry import Method, SeriesCurve, Target
from codeprobe.pipeline.report.format import difference, number, with_ci
from codeprobe.pipeline.report.plots import axes, curve
from codeprobe.pipeline.runfolder import ResultFolder, is_done, write_step_json
from codeprobe.pipeline.steps import Steps, device_lock, loaded_model, model_arg
from codeprobe.probes.astprobe.sweeps import select_on_validation
from codeprobe.provenance import step_key
from codeprobe.uncertainty import mean_ci, paired_difference

WEIGHTS = ("pretrained", "random")


def shared_pass_tokens(cfg: RunConfig) -> dict[str, Any] | None:
    """The token settings with which an attention method's forward pass can pool AST-Probe's
    hidden states for it (`tuple_tokens` keywords), or None when AST-Probe needs its own pass:
    it reads the source as given, as CAT-probing does."""
    a = cfg.astprobe
    if a is None or a.model_input != "source" or a.remove_docstrings:
        return None
    return {"drop_line_continuations": a.drop_line_continuations}


def step_settings(cfg: RunConfig) -> dict[str, Any]:
    """What shapes a sweep beyond its points, as JSON values."""
    a = cfg.astprobe
    return {
        "seed": cfg.seed,
        "seeds": [cfg.seed + k for k in range(a.probe_seeds)],
        "batch_size": cfg.extraction.batch_size,
        "device": cfg.extraction.device,
        "dtype": cfg.extraction.dtype,
        "train": cfg.train_config().settings(),
        "preprocessing": {
            "remove_docstrings": a.remove_docstrings,
            "drop_line_continuations": a.drop_line_continuations,
            "model_input": a.model_input,
        },
    }


def sweep_step(
    model: str,
    language: str,
    data_dir: str,
    points: list[tuple[int, int]],
    weights: str,
    cfg: RunConfig,
    cache_dir: str,
    reuse: list[str],
    out_path: str,
    key: str,
) -> str:
    """Fit an AST-Probe at every (hidden state, rank) of `points` for every seed on the train
    split, early-stopped on valid, and score each on valid (for selection) and on test (for
    reporting); write them as one JSON file recording `key`, and save the probes beside it
    (pretrained weights only).

    Args:
        weights: "pretrained" (the model as loaded) or "random" (the same architecture with
            random weights, the paper's baseline).
        cache_dir: the run's hidden-state cache; reuse: stores an attention method's forward
            pass pooled for AST-Probe (copied, not computed again; pretrained weights only).

    Returns:
        `out_path`.
    """
    from codeprobe.model import Extractor
    from codeprobe.probes.astprobe.cache import VectorCache
    from codeprobe.probes.astprobe.data import ensure_nonempty, prepare_split
    from codeprobe.probes.astprobe.sweeps import sweep

    if is_done(out_path, key):
        return out_path
    settings = step_settings(cfg)
    splits = read_splits(data_dir)
    device, dtype = cfg.extraction.device, cfg.extraction.dtype
    with device_lock(device):
        loaded = loaded_model(model, device, dtype)
        label = None
        if weights == "random":
            loaded = _random_model(model, device, dtype, cfg.seed)
            label = loaded.info.name
        extractor = Extractor(
            loaded, batch_size=cfg.extraction.batch_size, attention=False, vectors=True, length_policy="skip"
        )
        by_id = {snippet.id: snippet for snippet in read_snippets(data_dir)}
        stores = [] if weights == "random" else [VectorCache.open(p) for p in reuse if Path(p).is_dir()]
        prepared = [
            prepare_split(
                [by_id[i] for i in splits[name]],
                language,
                extractor,
                Path(cache_dir),
                model_label=label,
                reuse=stores,
                **settings["preprocessing"],
            )
            for name in ("train", "valid", "test")
        ]
        ensure_nonempty(prepared, ["training", "validation", "test"])
        save_dir = Path(out_path).parent / "probes" if weights == "pretrained" else None
        results = sweep(
            *prepared,
            points,
            config=cfg.train_config(),
            seeds=settings["seeds"],
            save_dir=save_dir,
            model=model_arg(model),
        )
    return write_step_json(
        out_path,
        {
            "weights": weights,
            "model": loaded.info.as_dict(),
            "test_ids": list(prepared[2].ids),
            "splits": {name: len(p) for name, p in zip(("train", "valid", "test"), prepared)},
            "dropped": {name: p.dropped for name, p in zip(("train", "valid", "test"), prepared)},
            "hidden_states_reused": sum(p.cache.reused for p in prepared),
            "points": [r.as_dict() for r in results],
        },
        key,
    )


def _random_model(model: str, device: str | None, dtype: str, seed: int):
    return _random_copy(loaded_model(model, device, dtype), seed)


@lru_cache(maxsize=2)
def _random_copy(loaded, seed: int):
    """The random-weights copy of a LoadedModel (by identity: a model loaded again after its
    files changed gets a new copy, its embeddings from the new weights)."""
    from codeprobe.probes.astprobe.sweeps import random_weights

    return random_weights(loaded, seed)


def run(cfg: RunConfig, steps: Steps, target: Target, log) -> None:
    """The sweep over hidden states (pretrained and random weights), then the rank sweep at the
    hidden state chosen on validation."""
    hidden_states = sorted(set(cfg.astprobe.hidden_states)) or list(range(target.n_hidden_states))
    reuse = target.shared.get("hidden_states", {})
    # The stores an attention method's pass wrote enter the key by their steps' keys, not paths.
    common = {"where": (target.model_id, target.data_key), "settings": step_settings(cfg)}

    def submit(name: str, points: list[tuple[int, int]], weights: str):
        reused = sorted(reuse) if weights == "pretrained" else []
        key = step_key(
            "astprobe-sweep", {**common, "points": points, "weights": weights, **({"reused": reused} if reused else {})}
        )
        return steps.submit(
            "astprobe-sweep",
            sweep_step,
            target.model,
            target.language,
            target.data_dir,
            points,
            weights,
            cfg,
            str(target.run.hidden_state_cache),
            [reuse[k] for k in reused],
            str(target.results.file(name)),
            key,
        )

    rank = cfg.astprobe.rank
    # Hidden state 0 (the embeddings) is always probed: it is the embedding baseline.
    real = submit("layers.json", [(h, rank) for h in sorted({0, *hidden_states})], "pretrained")
    random = (
        submit("random.json", [(h, rank) for h in hidden_states], "random") if cfg.astprobe.random_baseline else None
    )
    best = select_on_validation(read_json(real.result())["points"], "layer", among=hidden_states)
    log.info("AST-Probe %s / %s: best hidden state on validation %s", target.model, target.language, best)
    if random is not None:
        random.result()
    if cfg.astprobe.ranks and best is not None:
        # The sweep over hidden states already holds (best, rank): the rank sweep adds the others.
        submit("ranks.json", [(best, r) for r in sorted(set(cfg.astprobe.ranks) - {rank})], "pretrained").result()
        log.info("AST-Probe %s / %s: rank sweep at hidden state %d done", target.model, target.language, best)


# ---------------------------------------------------------------- summary


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
    one, its best rank chosen on validation too)."""
    if not folder.file("layers.json").exists():
        return None
    real = read_json(folder.file("layers.json"))
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
    best = select_on_validation(real["points"], "layer", among=chosen or None)
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
        "hidden_states_reused": real.get("hidden_states_reused", 0),
        "training": {**cfg.train_config().settings(), "seeds": cfg.astprobe.probe_seeds if cfg.astprobe else 1},
    }
    if ranks is not None and best is not None:
        swept = {"points": ranks["points"] + [p for p in real["points"] if p["layer"] == best]}
        points = sorted(_aggregate(swept), key=lambda p: p["rank"])
        out["ranks"] = {
            "hidden_state": best,
            "selection": "validation",
            "best_rank": select_on_validation(swept["points"], "rank"),
            "points": [_public(p) for p in points],
        }
    return out


def model_info(folder: ResultFolder) -> dict[str, Any] | None:
    path = folder.file("layers.json")
    return read_json(path).get("model") if path.exists() else None


def _aggregate(swept: dict | None) -> list[dict]:
    """One entry per (hidden state, rank) of a sweep's points (whose `layer` is the hidden
    state): scores averaged over seeds, the per-snippet test F1 averaged over seeds (for
    intervals and pairing), and the seeds' spread."""
    if not swept:
        return []
    ids = swept.get("test_ids")
    groups: dict[tuple[int, int], list[dict]] = {}
    for p in swept["points"]:
        groups.setdefault((p["layer"], p["rank"]), []).append(p)
    out = []
    for (layer, rank), ps in sorted(groups.items()):
        ok = [p for p in ps if not p["diverged"]]
        entry: dict[str, Any] = {
            "hidden_state": layer,
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
    diff = paired_difference(
        [pa[i] for i in common], [pb[i] for i in common], random_state=a["hidden_state"] * 1000 + a["rank"]
    )
    return diff.as_dict()


def _public(p: dict) -> dict:
    return {k: v for k, v in p.items() if not k.startswith("_")}


# ---------------------------------------------------------------- report


def report(sections: list[tuple[str, dict[str, Any]]], plots: Path) -> list[str]:
    """The Markdown section: F1 by hidden state (and by rank) with baselines, and a table per
    result."""
    with axes(
        plots / "astprobe_by_layer.png",
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
                ax.axhline(emb["f1"], ls="--", color=color, alpha=0.6, label=f"{label}: embedding layer")
            if a.get("best_hidden_state") is not None:
                ax.axvline(a["best_hidden_state"], color=color, alpha=0.25, lw=4, label=f"{label}: best on validation")
    lines = ["## AST-Probe", "", f"![AST-Probe F1 by hidden state]({plots.name}/astprobe_by_layer.png)", ""]
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


def _epoch(p: dict) -> str:
    epoch = p.get("best_epoch")
    text = "/".join(map(str, epoch)) if isinstance(epoch, list) else str(epoch)
    return text + (" max!" if p.get("hit_max_epochs") else "") + (" none!" if p.get("never_improved") else "")


# ---------------------------------------------------------------- over training


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
    layer_axis="hidden-states index (0 = embeddings)",
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

METHOD = Method(
    name="astprobe",
    title="AST-Probe",
    needs=frozenset({"hidden_states"}),
    run=run,
    summarize=summarize,
    report=report,
    series=SERIES,
    model_info=model_info,
    shared_pass=shared_pass_tokens,
)

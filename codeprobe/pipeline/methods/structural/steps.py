"""The structural probes' steps: the probes of every hidden state on the gold token tree, then,
at the hidden states chosen on validation (or all), on the control tree and on the
random-weights model; `run` submits them.

Each step reads the hidden states from AST-Probe's cache (`prepare_split`: the same snippets,
tokens and preprocessing, so the same cache, reopened without a forward pass when it holds the
hidden states asked for; a store an attention method's pass pooled is copied when there is
none), builds each snippet's token tree over exactly the cache's tokens, trains the stacked
distance and depth probes, and writes every test snippet's scores (what the summary's intervals
and paired differences resample) and the validation means (what selection reads).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from codeprobe.errors import InputError
from codeprobe.files import read_json
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.data import empty_splits, read_snippets, read_splits
from codeprobe.pipeline.registry import Target
from codeprobe.pipeline.runfolder import StepOutput, step_output, write_step_json
from codeprobe.pipeline.steps import Steps, device_lock, loaded_model, random_weights_model
from codeprobe.probes.structural import StructuralTrainConfig
from codeprobe.probes.structural.estimators import SETTINGS_FILE, WEIGHTS_FILE
from codeprobe.provenance import step_key
from codeprobe.syntax import token_tree

KINDS = ("distance", "depth")
# What selection reads on validation, per probe: the mean over snippets of UUAS, of NSpr.
SELECTED_BY = {"distance": "uuas", "depth": "nspr"}
SPLITS = ("train", "valid", "test")
FILES = {"task": "task.json", "control": "control.json", "random": "random.json"}


def preprocessing(cfg: RunConfig) -> dict[str, Any]:
    """AST-Probe's preprocessing switches when it runs (its hidden-state cache is then this
    method's too), else its defaults: the source as given, every token."""
    a = cfg.astprobe
    if a is None:
        return {"remove_docstrings": False, "drop_line_continuations": False, "model_input": "source"}
    return {
        "remove_docstrings": a.remove_docstrings,
        "drop_line_continuations": a.drop_line_continuations,
        "model_input": a.model_input,
    }


def shared_pass_tokens(cfg: RunConfig) -> dict[str, Any] | None:
    """The token settings with which an attention method's forward pass can pool this method's
    hidden states (`Method.shared_pass`), or None when it needs a pass of its own."""
    p = preprocessing(cfg)
    if p["model_input"] != "source" or p["remove_docstrings"]:
        return None
    return {"drop_line_continuations": p["drop_line_continuations"]}


def train_config(cfg: RunConfig) -> StructuralTrainConfig:
    """The probes' `StructuralTrainConfig`, on the run's device."""
    s = cfg.structural
    return StructuralTrainConfig(
        lr=s.lr,
        batch_size=s.batch_size,
        max_epochs=s.max_epochs,
        patience=s.patience,
        batching=s.batching,
        device=cfg.extraction.device or "cpu",
        # One thread: the same probes in this process and on a Dask worker (OMP_NUM_THREADS=1),
        # whose sums a different thread count would round otherwise; and the probes' matrices are
        # small, so on a busy machine one thread beats OpenMP's spinning ones.
        threads=1,
    )


def step_settings(cfg: RunConfig) -> dict[str, Any]:
    """What shapes a step beyond its hidden states, weights and tree, as JSON values."""
    s = cfg.structural
    return {
        "seed": cfg.seed,
        "rank": s.rank,
        "target": s.target,
        "train": {k: getattr(s, k) for k in ("lr", "batch_size", "max_epochs", "patience", "batching")},
        "batch_size": cfg.extraction.batch_size,
        "device": cfg.extraction.device,
        "dtype": cfg.extraction.dtype,
        "preprocessing": preprocessing(cfg),
    }


def cached_states(cfg: RunConfig, n_hidden_states: int, weights: str, own: set[int]) -> list[int]:
    """The hidden states a step asks AST-Probe's cache for: its own, and those AST-Probe's
    sweep keeps for the same weights when it runs, so that the step finds AST-Probe's cache
    complete, and a cache built again for a hidden state it lacks still serves AST-Probe."""
    a = cfg.astprobe
    theirs: set[int] = set()
    if a is not None and (weights == "pretrained" or a.random_baseline):
        theirs = set(a.hidden_states) or set(range(n_hidden_states))
        if weights == "pretrained":
            theirs.add(0)
    return sorted(own | theirs)


def saved_probes(out_path: str | Path, kinds: list[str]) -> list[Path]:
    """The files of the probes the task step saves beside its output: `probes/<kind>/`."""
    folder = Path(out_path).parent / "probes"
    return [folder / kind / name for kind in kinds for name in (SETTINGS_FILE, WEIGHTS_FILE)]


def _also(a: dict[str, Any]) -> list[Path]:
    return saved_probes(a["out_path"], sorted(a["states"])) if a["role"] == "task" else []


@step_output(lambda a: StepOutput(a["out_path"], a["key"], also=lambda: _also(a)))
def probe_step(
    model: str,
    language: str,
    data_dir: str,
    states: dict[str, list[int]],
    role: str,
    cfg: RunConfig,
    cache_dir: str,
    cache_states: list[int],
    reuse: list[str],
    out_path: str,
    key: str,
) -> str:
    """Fit the stacked probes of `states` ({kind: hidden states}) on the train split, each
    epoch selected on valid, and score them on valid (means, for selection) and test (per
    snippet); write them as one JSON file recording `key` (the task's probes saved beside it);
    done when they are, as written (`step_output`).

    Args:
        role: "task" (the gold token tree, pretrained weights; also the linear baseline's test
            scores), "control" (the control tree, pretrained weights) or "random" (the gold
            tree, the same architecture with random weights).
        cache_dir: the run's hidden-state cache; cache_states: the hidden states asked of it
            (`cached_states`); reuse: stores of an attention method's pass (pretrained weights
            only), removed once the cache holds their hidden states.

    Returns:
        `out_path`.

    Raises:
        InputError: a split without usable snippets, or a cache whose tokens are not the token
            trees' (it does not match its snippets).
    """
    from codeprobe.model import Extractor
    from codeprobe.probes.astprobe.cache import reusable
    from codeprobe.probes.astprobe.data import ensure_nonempty, prepare_split
    from codeprobe.probes.structural import DepthEvaluation, DistanceEvaluation
    from codeprobe.probes.structural.control import control_trees

    started, cpu = time.perf_counter(), time.process_time()
    settings = step_settings(cfg)
    weights = "random" if role == "random" else "pretrained"
    splits = read_splits(data_dir)
    device, dtype = cfg.extraction.device, cfg.extraction.dtype
    with device_lock(device):
        loaded = loaded_model(model, device, dtype, **cfg.extraction.placement())
        label = None
        if weights == "random":
            loaded = random_weights_model(model, device, dtype, cfg.seed, **cfg.extraction.placement())
            label = loaded.info.name  # AST-Probe's label: its random-weights cache is found again
        extractor = Extractor(
            loaded, batch_size=cfg.extraction.batch_size, attention=False, hidden_states=True, length_policy="skip"
        )
        by_id = {snippet.id: snippet for snippet in read_snippets(data_dir)}
        stores = reusable(reuse) if weights == "pretrained" else []
        prepared = [
            prepare_split(
                [by_id[i] for i in splits[name]],
                language,
                extractor,
                Path(cache_dir),
                model_label=label,
                reuse=stores,
                hidden_states=cache_states,
                **settings["preprocessing"],
            )
            for name in SPLITS
        ]
        ensure_nonempty(prepared, ["training", "validation", "test"])
        for store in stores:  # moved into the caches: each hidden state is kept on disk once
            shutil.rmtree(store.path, ignore_errors=True)
        gold = [split_trees(p) for p in prepared]
        trees = [control_trees(t, cfg.seed) for t in gold] if role == "control" else gold
        config = train_config(cfg)
        out: dict[str, Any] = {}
        for kind, hidden_states in states.items():
            out[kind] = _fit_and_score(kind, hidden_states, prepared, trees, config, cfg, role, out_path)
    test = trees[2]
    record: dict[str, Any] = {
        "role": role,
        "weights": weights,
        "tree": trees[2][0].rule,
        "model": loaded.info.as_dict(),
        "test_ids": list(prepared[2].ids),
        "test_lengths": [len(t) for t in test],
        "max_subwords": extractor.max_subwords,
        "splits": {name: len(p) for name, p in zip(SPLITS, prepared)},
        "dropped": {name: p.dropped for name, p in zip(SPLITS, prepared)},
        "hidden_states_reused": sum(p.cache.reused for p in prepared),
        **out,
    }
    if role == "task":
        record["linear"] = {
            "distance": _distance_rows(DistanceEvaluation.linear(test, cfg.structural.target)),
            "depth": _depth_rows(DepthEvaluation.linear(test)),
        }
    record["seconds"] = round(time.perf_counter() - started, 1)
    record["cpu_seconds"] = round(time.process_time() - cpu, 1)  # this process's, every thread
    return write_step_json(out_path, record, key)


def split_trees(split) -> list:
    """The gold token tree of each snippet of an AST-Probe `ProbeSplit`, over exactly the tokens
    its cache pooled the hidden states onto (its tuples' tokens: strings collapsed, the same
    line-continuation switch).

    Raises:
        InputError: a tree whose size is not its snippet's number of cached token vectors.
    """
    trees = [token_tree(t.tokens) for t in split.tuples]
    if [len(t) for t in trees] != split.cache.lengths.tolist():
        raise InputError(f"the hidden-state cache in {split.cache.path} does not match its snippets' token trees")
    return trees


def stacked_vectors(split, hidden_states: list[int]) -> list[np.ndarray]:
    """float16 (S, n_k, hidden) per snippet of a `ProbeSplit`: its cached token vectors at the
    S hidden states, in the cache's order (the trees' order)."""
    maps = [split.cache.hidden_state(h) for h in hidden_states]
    ends = np.cumsum(split.cache.lengths)
    return [np.stack([m[e - n : e] for m in maps]) for e, n in zip(ends.tolist(), split.cache.lengths.tolist())]


def _fit_and_score(kind, hidden_states, prepared, trees, config, cfg, role, out_path) -> dict[str, Any]:
    from codeprobe.probes.structural import StackedDepthProbe, StackedDistanceProbe

    s = cfg.structural
    if kind == "distance":
        probe = StackedDistanceProbe(s.rank, target=s.target, random_state=cfg.seed, config=config)
    else:
        probe = StackedDepthProbe(s.rank, random_state=cfg.seed, config=config)
    X = [stacked_vectors(p, hidden_states) for p in prepared]
    t0 = time.perf_counter()
    probe.fit(X[0], trees[0], X_valid=X[1], y_valid=trees[1])
    fit_seconds = time.perf_counter() - t0
    rows = _distance_rows if kind == "distance" else _depth_rows
    valid = [rows(e) for e in probe.evaluate(X[1], trees[1])]
    test = [rows(e) for e in probe.evaluate(X[2], trees[2])]
    if role == "task":
        probe.save(Path(out_path).parent / "probes" / kind)
    points = []
    for h, v, t, r in zip(hidden_states, valid, test, probe.fit_results_):
        points.append(
            {
                "hidden_state": h,
                "valid": {metric: _mean(values) for metric, values in v.items()},
                "test": t,
                "best_epoch": r.best_epoch,
                "epochs": r.epochs,
                "hit_max_epochs": r.hit_max_epochs,
                "initial_valid_loss": r.initial_valid_loss,
                "best_valid_loss": r.best_valid_loss,
            }
        )
    return {"points": points, "fit_seconds": round(fit_seconds, 1)}


def _distance_rows(e) -> dict[str, list]:
    """A `DistanceEvaluation`'s per-snippet scores: UUAS (recovered / gold edges) and DSpr."""
    return {"uuas": e.uuas_per_snippet.tolist(), "uuas_correct": e.uuas_correct.tolist(), "dspr": e.dspr.tolist()}


def _depth_rows(e) -> dict[str, list]:
    """A `DepthEvaluation`'s per-snippet scores: NSpr and root accuracy (1 or 0)."""
    return {"nspr": e.nspr.tolist(), "root_accuracy": e.root_correct.astype(float).tolist()}


def _mean(values: list) -> float | None:
    v = np.asarray([np.nan if x is None else x for x in values], dtype=np.float64)
    return float(np.nanmean(v)) if np.isfinite(v).any() else None


def best_on_validation(points: list[dict[str, Any]], kind: str, among: list[int] | None = None) -> int | None:
    """The hidden state whose probe scores best on validation (mean UUAS for the distance
    probe, mean NSpr for the depth probe; ties: the lowest), among `among` (None: all)."""
    metric = SELECTED_BY[kind]
    scored = [
        (p["valid"].get(metric), p["hidden_state"])
        for p in points
        if p["valid"].get(metric) is not None and (among is None or p["hidden_state"] in among)
    ]
    return max(scored, key=lambda vh: (vh[0], -vh[1]))[1] if scored else None


def run(cfg: RunConfig, steps: Steps, target: Target, log) -> None:
    """The probes of every hidden state on the gold token tree; then the control tree and the
    random-weights model at the hidden states chosen on validation (or all). Not run where a split
    is empty (no section)."""
    s = cfg.structural
    empty = empty_splits(target.data_dir)
    if empty:  # nothing to fit, select or report on
        log.warning(
            "structural probes %s / %s / %s: not run, the %s split is empty",
            target.model,
            target.language,
            target.dataset,
            " and ".join(empty),
        )
        return
    chosen = sorted(set(s.hidden_states)) or list(range(target.n_hidden_states))
    kinds = [k for k in KINDS if k in s.probes]
    reuse = target.shared.get("hidden_states", {})
    common = {"where": (target.model_id, target.data_key), "settings": step_settings(cfg)}

    def submit(role: str, states: dict[str, list[int]]):
        weights = "random" if role == "random" else "pretrained"
        reused = sorted(reuse) if weights == "pretrained" else []
        own = {h for hs in states.values() for h in hs}
        key = step_key(
            "structural-probe",
            {**common, "role": role, "states": states, **({"reused": reused} if reused else {})},
        )
        return steps.submit(
            "structural-probe",
            probe_step,
            target.model,
            target.language,
            target.data_dir,
            states,
            role,
            cfg,
            str(target.run.hidden_state_cache),
            cached_states(cfg, target.n_hidden_states, weights, own),
            [reuse[k] for k in reused],
            str(target.results.file(FILES[role])),
            key,
        )

    # Hidden state 0 (the embeddings) is always probed: it is the embedding baseline.
    task = read_json(submit("task", {k: sorted({0, *chosen}) for k in kinds}).result())
    best = {k: best_on_validation(task[k]["points"], k, among=chosen) for k in kinds}
    log.info("structural probes %s / %s: best hidden states on validation %s", target.model, target.language, best)
    for role, where in (("control", s.control), ("random", s.random_weights)):
        if where == "none":
            continue
        states = {k: chosen if where == "all" else [best[k]] for k in kinds if where == "all" or best[k] is not None}
        if states:
            submit(role, states).result()
            log.info("structural probes %s / %s: %s done", target.model, target.language, role)

"""CAT-probing's steps: one per shard of snippets (a forward pass with attention, scored as it
streams into the shard's scorer state), and the reduce over the shards; `run` submits them."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from codeprobe.files import write_atomic, write_npz
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.data import read_snippets
from codeprobe.pipeline.registry import Target, methods
from codeprobe.pipeline.runfolder import KEY_FIELD, StepOutput, step_output, write_step_json
from codeprobe.pipeline.steps import Steps, device_lock, loaded_model
from codeprobe.progress import progress
from codeprobe.provenance import step_key, versions

MEAN_HEAD = "mean"  # summary.json's `head` of head-mean rows
TRUNCATED_FIELD = "_n_truncated"  # a shard's count of snippets cut at the input limit


def shared_tokens(cfg: RunConfig) -> dict[str, Any] | None:
    """The token settings with which this forward pass also pools a later method's hidden
    states (`Method.shared_pass`), or None: CAT-probing must read the source as given."""
    if cfg.cat is None or cfg.cat.model_input != "source":
        return None
    wanted = [
        m.shared_pass(cfg) for m in methods() if m.name != "cat" and m.enabled(cfg) and "hidden_states" in m.needs
    ]
    return next((tokens for tokens in wanted if tokens is not None), None)


def step_settings(cfg: RunConfig, language: str) -> dict[str, Any]:
    """What shapes a CAT step for `language`, as JSON values: the CAT section with its type
    strategy resolved, the seed, the extraction, the hidden states it pools for later methods,
    the grammar and the library versions."""
    from codeprobe.probes.cat.types import default_strategy
    from codeprobe.syntax import grammar_info

    grammar = grammar_info(language)
    cat = cfg.cat.model_dump(mode="json")
    if cat["types"] == "auto":
        cat["types"] = default_strategy(language)
    cat["per_head"] = cat["per_head"] and cat["head_pooling"] == "mean"  # max pools the heads away
    return {
        "cat": cat,
        "seed": cfg.seed,
        "extraction": cfg.extraction.model_dump(mode="json"),
        "hidden_state_tokens": shared_tokens(cfg),
        "grammar": {"package": grammar.package, "version": grammar.package_version},
        "versions": versions(),
    }


def run(cfg: RunConfig, steps: Steps, target: Target, log) -> None:
    """A step per shard of `extraction.shard_size` snippets, then the reduce."""
    settings = step_settings(cfg, target.language)
    shard_size = cfg.extraction.shard_size
    n_shards = max(1, -(-target.n_snippets // shard_size))
    where = (target.model_id, target.data_key)
    keys = [
        step_key("cat-shard", {"where": where, "shard": k, "shard_size": shard_size, "settings": settings})
        for k in range(n_shards)
    ]
    futures = [
        steps.submit(
            "cat-shard",
            cat_shard,
            target.model,
            target.language,
            target.data_dir,
            k,
            shard_size,
            settings,
            str(target.results.shard(k)),
            keys[k],
        )
        for k in range(n_shards)
    ]
    paths = []
    stores = target.shared.setdefault("hidden_states", {})
    for k, future in enumerate(progress(futures, desc=f"CAT {target.model}", unit="shard", inner=False)):
        paths.append(future.result())
        if settings["hidden_state_tokens"] is not None:
            stores[keys[k]] = str(hidden_state_store(paths[-1]))
        log.info("CAT %s / %s: shard %d/%d done", target.model, target.language, k + 1, n_shards)
    reduce_key = step_key("cat-reduce", {"shards": keys, "settings": settings})
    steps.submit(
        "cat-reduce", cat_reduce, target.model, target.language, paths, settings, str(target.results.path), reduce_key
    ).result()
    log.info("CAT %s / %s: scored", target.model, target.language)


def hidden_state_store(shard_path: str | Path) -> Path:
    """Where a CAT shard keeps the hidden states its forward pass pooled for a later method."""
    return Path(shard_path).with_suffix(".hidden_states")


def heads_path(shard_path: str | Path) -> Path:
    """Where the per-head rows of shard `.../shard-NNNN.npz` go: `.../heads-NNNN.npz`."""
    p = Path(shard_path)
    return p.with_name("heads-" + p.name.removeprefix("shard-"))


def cat_probe(settings: dict[str, Any]):
    """The CATProbe a step's settings describe (the config's CAT section is its arguments)."""
    from functools import partial

    from codeprobe.probes.astprobe.tuples import tuple_tokens
    from codeprobe.probes.cat.probe import CATProbe

    tokens = settings["hidden_state_tokens"]
    return CATProbe(
        **settings["cat"],
        random_state=settings["seed"],
        batch_size=settings["extraction"]["batch_size"],
        hidden_state_tokens=None if tokens is None else partial(tuple_tokens, **tokens),
    )


def _scorer(settings: dict[str, Any], language: str):
    from codeprobe.probes.cat.scorer import CATAccumulator

    cat = settings["cat"]
    return CATAccumulator(
        language=language,
        types=cat["types"],
        quantile=cat["quantile"],
        top_k=cat["top_k"],
        random_state=settings["seed"],
        head_rows=False,
    )


@step_output(
    lambda a: StepOutput(a["out_path"], a["key"], also=lambda: [p for p in [heads_path(a["out_path"])] if p.exists()])
)
def cat_shard(
    model: str,
    language: str,
    data_dir: str,
    shard: int,
    shard_size: int,
    settings: dict[str, Any],
    out_path: str,
    key: str,
) -> str:
    """Pass 1 of CAT-probing on one shard: parse, one forward pass per batch, distances and,
    where the kept types are known up front (`paper`, `all`), the scores.

    Adds the shard's samples, in the data's order, to the streaming scorer
    (`codeprobe.probes.cat.scorer.CATAccumulator`) and saves its state (flat arrays, no pickle)
    recording `key`; a shard whose file already records `key`, as written, is not recomputed
    (`step_output`: nor computed twice at once). Under `paper`
    and `all` each sample is scored as the forward pass yields it, so the shard holds one
    window's attention at a time and its file keeps the head-mean rows and the type-rate table
    (per-head rows go beside it, `heads_path`). Under `topk` the kept types come from the whole
    dataset's rates, so the file keeps every sample's inputs with head-mean attention for the
    reduce. With `settings["hidden_state_tokens"]` the same forward pass also pools a later
    method's hidden states of every snippet read whole into a store beside the shard
    (`hidden_state_store`), which that method copies instead of running the model again.

    Returns:
        `out_path`.
    """
    from codeprobe.model import ModelInput
    from codeprobe.prefetch import threaded_map
    from codeprobe.probes.astprobe.cache import write_store
    from codeprobe.probes.cat.dataset import SkippedSample
    from codeprobe.probes.cat.results import MEAN_HEAD as MEAN_HEAD_ROW

    shard_snippets = read_snippets(data_dir)[shard * shard_size : (shard + 1) * shard_size]
    # Read shortest first, so that each length bucket of the extractor holds similar lengths
    # (less padding); the shard keeps the data's order.
    order = sorted(range(len(shard_snippets)), key=lambda i: len(shard_snippets[i].code))
    snippets = [shard_snippets[i] for i in order]
    probe = cat_probe(settings)
    scorer = _scorer(settings, language)
    outcomes: list = []  # per snippet, in reading order: its first pass, or why it was skipped
    truncated = [0]  # snippets the model read cut at the input limit

    def outcome(x):  # on a worker thread
        return scorer.first_pass(x if isinstance(x, SkippedSample) else x.sample)

    def pooled():  # streamed: a shard never holds its hidden states, nor its attention
        for x, out in threaded_map(lambda x: (x, outcome(x)), probe.inputs(snippets, extractor, language=language)):
            outcomes.append(out)
            truncated[0] += getattr(x, "status", None) == "truncated"
            if getattr(x, "hidden_states", None) is not None:
                yield ModelInput(x.sample.sample_id, x.code, *x.hidden_state_spans), x.hidden_states

    extraction = settings["extraction"]
    with device_lock(extraction["device"]):
        extractor = probe.extractor(loaded_model(model, extraction["device"], extraction["dtype"]))
        if probe.hidden_state_tokens is None:
            deque(pooled(), maxlen=0)  # no store to write: run the stream for its outcomes
        else:
            write_store(hidden_state_store(out_path), pooled(), extractor.info.as_dict(), key, len(snippets))
    outcomes = [outcomes[k] for k in np.argsort(order, kind="stable")]
    for x in outcomes:
        scorer.add(x)
    rows = [x.rows for x in outcomes if getattr(x, "rows", None) is not None]  # scored up front, every head
    outcomes.clear()  # under topk, the attention: the scorer keeps its own copy
    if rows and np.any(rows[0]["head"] != MEAN_HEAD_ROW):
        write_head_rows(rows, out_path)
    else:  # an earlier run's, with other settings, must not stay beside this shard
        heads_path(out_path).unlink(missing_ok=True)
    return str(scorer.save(out_path, **{KEY_FIELD: np.array(key), TRUNCATED_FIELD: np.array(truncated[0])}))


def n_truncated(shard_path: str | Path) -> int:
    """How many of a shard's snippets the model read cut at the input limit."""
    with np.load(shard_path, allow_pickle=False) as z:
        return int(z[TRUNCATED_FIELD]) if TRUNCATED_FIELD in z.files else 0


def write_head_rows(rows: list[dict[str, np.ndarray]], shard_path: str) -> Path:
    """Write the per-head rows of a shard's scored samples (the head mean and every head)
    beside the shard, for `head_table`. Only `paper` and `all` have them: `topk`'s kept types
    come from dataset-wide rates."""
    arrays = {k: np.concatenate([r[k] for r in rows]) for k in ("layer", "head", "score")}
    arrays["sample_id"] = np.concatenate([r["sample_id"] for r in rows]).astype(str)
    return write_npz(heads_path(shard_path), arrays)


@step_output(
    lambda a: StepOutput(
        Path(a["out_dir"], "summary.json"),
        a["key"],
        also=lambda: [Path(a["out_dir"], name) for name in ("samples.parquet", "layers.parquet", "rates.parquet")],
    )
)
def cat_reduce(
    model: str, language: str, shard_paths: list[str], settings: dict[str, Any], out_dir: str, key: str
) -> str:
    """Pass 2 of CAT-probing over all shards: the shards' scorers merged in shard order (under
    `paper` and `all` their rows and rate tables add up; under `topk` their inputs are scored
    here, with the merged rates), then scores, baselines and their bootstrap intervals.

    Writes samples.parquet (per sample and layer), layers.parquet (per-layer summary),
    rates.parquet (the frequent-type table) and, last, summary.json (recording `key`; head-mean
    rows have `head` "mean"); returns the summary's path.
    """
    import pyarrow.parquet as pq

    from codeprobe.probes.cat.scorer import CATAccumulator

    out = Path(out_dir)
    done = out / "summary.json"
    extraction = settings["extraction"]
    loaded = loaded_model(model, extraction["device"], extraction["dtype"])
    info = loaded.info
    with _scorer(settings, language) as scorer:
        for path in shard_paths:
            scorer.merge(CATAccumulator.load(path))
        result = scorer.result(
            {
                "distance": settings["cat"]["distance"],
                # The limit the extractor cut at (the model's, where lower than the setting).
                "max_subwords": loaded.input_limit(settings["cat"]["max_subwords"]),
                "n_truncated": sum(n_truncated(path) for path in shard_paths),
                "model": info.as_dict(),
                "grammar": settings["grammar"],
                "versions": settings["versions"],
            }
        )
    meta = result.metadata()
    write_atomic(out / "samples.parquet", lambda tmp: result.samples.to_parquet(tmp, meta), record=True)
    write_atomic(out / "layers.parquet", lambda tmp: pq.write_table(result.summary.to_arrow(meta), tmp), record=True)
    write_atomic(out / "rates.parquet", lambda tmp: pq.write_table(result.rates.to_arrow(), tmp), record=True)
    summary = result.summary
    names = (
        "layer",
        "head",
        "n_used",
        "n_skipped",
        "score",
        "score_std",
        "random_baseline",
        "positional_baseline",
        "skip_reasons",
        "minus_positional",
        "minus_random",
        "score_ci",
        "random_ci",
        "positional_ci",
        "minus_positional_ci",
        "minus_random_ci",
    )
    layers = [{name: getattr(summary, name)[i] for name in names} for i in range(len(summary))]
    for row in layers:
        row["head"] = MEAN_HEAD if row["head"] < 0 else int(row["head"])
    return write_step_json(
        done,
        {"method": "CAT-probing", "language": language, "model": info.as_dict(), "layers": layers, "settings": meta},
        key,
    )

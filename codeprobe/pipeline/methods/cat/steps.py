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
from codeprobe.pipeline.registry import AttentionShare, Target, method, methods
from codeprobe.pipeline.runfolder import (
    KEY_FIELD,
    ResultFolder,
    StepOutput,
    is_done,
    recorded_key,
    step_output,
    write_step_json,
)
from codeprobe.pipeline.steps import Steps, device_lock, model_for
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


def attention_shares(cfg: RunConfig, target: Target) -> list[AttentionShare]:
    """What later methods read from this forward pass's per-head attention, shard by shard
    (`Method.attention_share`)."""
    shares = [
        m.attention_share(cfg, target, cfg.extraction.shard_size)
        for m in methods()
        if m.name != "cat" and m.enabled(cfg) and m.read_attention is not None
    ]
    return [s for s in shares if s is not None]


def step_settings(
    cfg: RunConfig, language: str, shares: list[AttentionShare] = (), kind: str = "encoder"
) -> dict[str, Any]:
    """What shapes a CAT step for `language` and a model of `kind` (`ModelInfo.kind`), as JSON
    values: the CAT section with its type strategy and mask resolved (the mask: causal for a
    decoder, unless set), the seed, the extraction, the hidden states it pools for later methods,
    what later methods read of its attention (`attention_shares`; they need every head's, so
    per-head scores are on), the grammar and the library versions."""
    from codeprobe.probes.cat.score import resolve_mask
    from codeprobe.probes.cat.types import default_strategy
    from codeprobe.syntax import grammar_info

    grammar = grammar_info(language)
    cat = cfg.cat.model_dump(mode="json")
    if cat["types"] == "auto":
        cat["types"] = default_strategy(language)
    cat["mask"] = resolve_mask(cat["mask"], kind)
    cat["per_head"] = (cat["per_head"] or bool(shares)) and cat["head_pooling"] == "mean"  # max pools heads away
    return {
        "cat": cat,
        "seed": cfg.seed,
        "extraction": cfg.extraction.model_dump(mode="json"),
        "hidden_state_tokens": shared_tokens(cfg),
        "attention_shares": [{"method": s.method, "settings": s.settings} for s in shares],
        "grammar": {"package": grammar.package, "version": grammar.package_version},
        "versions": versions(),
    }


def run(cfg: RunConfig, steps: Steps, target: Target, log) -> None:
    """A step per shard of `extraction.shard_size` snippets, then the reduce. Once the reduce is
    done, the shards are not needed (nor checked): `codeprobe clean` may have removed them."""
    shares = attention_shares(cfg, target)
    settings = step_settings(cfg, target.language, shares, target.model_id.get("kind", "encoder"))
    shard_size = cfg.extraction.shard_size
    n_shards = target.n_shards(shard_size)
    where = (target.model_id, target.data_key)
    keys = [
        step_key("cat-shard", {"where": where, "shard": k, "shard_size": shard_size, "settings": settings})
        for k in range(n_shards)
    ]
    paths = [str(target.results.shard(k)) for k in range(n_shards)]
    if settings["hidden_state_tokens"] is not None:
        # A later method keys its steps by these stores' keys, whether or not the stores are
        # still there (AST-Probe moves them into its cache).
        target.shared.setdefault("hidden_states", {}).update(
            {key: str(hidden_state_store(path)) for key, path in zip(keys, paths)}
        )
    reduce_key = step_key("cat-reduce", {"shards": keys, "settings": settings})
    if is_done(target.results.file("summary.json"), reduce_key, also=reduce_tables(target.results.path)):
        log.info("CAT %s / %s: scored (done earlier)", target.model, target.language)
        return
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
            path,
            key,
            [(s.method, s.settings, s.paths[k], s.keys[k]) for s in shares],
        )
        for k, (path, key) in enumerate(zip(paths, keys))
    ]
    for k, future in enumerate(progress(futures, desc=f"CAT {target.model}", unit="shard", inner=False)):
        future.result()
        log.info("CAT %s / %s: shard %d/%d done", target.model, target.language, k + 1, n_shards)
    steps.submit(
        "cat-reduce", cat_reduce, target.model, target.language, paths, settings, str(target.results.path), reduce_key
    ).result()
    log.info("CAT %s / %s: scored", target.model, target.language)


def reduce_tables(out_dir: str | Path) -> list[Path]:
    """The tables the reduce writes beside its summary.json (read back by the reports)."""
    return [Path(out_dir, name) for name in ("samples.parquet", "layers.parquet", "rates.parquet")]


def intermediates(folder: ResultFolder) -> list[Path]:
    """The shards, their per-head rows and their hidden-state stores, once the reduce has
    written its summary (which holds all that the reports read of them)."""
    if recorded_key(folder.file("summary.json")) is None:
        return []
    return [*folder.shards(), *folder.shards(prefix="heads"), *folder.shards(suffix=".hidden_states")]


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
        mask=cat["mask"],
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
    shares: list[tuple[str, dict[str, Any], str, str]] = (),
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
    (`hidden_state_store`), which that method copies instead of running the model again. Each
    of `shares` ((method, its settings, path, key): `AttentionShare`) gets every snippet's
    per-head attention through the method's reader (`Method.read_attention`), whose file is
    written, recording the key, before the shard's (skipped where it is done already).

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
    readers = [
        (method(name).read_attention(reader_settings, language), path, reader_key)
        for name, reader_settings, path, reader_key in shares
        if not is_done(path, reader_key)
    ]
    outcomes: list = []  # per snippet, in reading order: its first pass, or why it was skipped
    read: list = []  # per snippet, in reading order: the readers' first passes
    truncated = [0]  # snippets the model read cut at the input limit

    def outcome(x):  # on a worker thread
        first = scorer.first_pass(x if isinstance(x, SkippedSample) else x.sample)
        return first, [r.first_pass(x) for r, _, _ in readers]

    def pooled():  # streamed: a shard never holds its hidden states, nor its attention
        for x, (out, extra) in threaded_map(
            lambda x: (x, outcome(x)), probe.inputs(snippets, extractor, language=language)
        ):
            outcomes.append(out)
            read.append(extra)
            truncated[0] += getattr(x, "status", None) == "truncated"
            if getattr(x, "hidden_states", None) is not None:
                yield ModelInput(x.sample.sample_id, x.code, *x.hidden_state_spans), x.hidden_states

    extraction = settings["extraction"]
    with device_lock(extraction["device"]):
        extractor = probe.extractor(model_for(model, extraction))
        if probe.hidden_state_tokens is None:
            deque(pooled(), maxlen=0)  # no store to write: run the stream for its outcomes
        else:
            write_store(hidden_state_store(out_path), pooled(), extractor.info.as_dict(), key, len(snippets))
    in_data_order = np.argsort(order, kind="stable")
    outcomes = [outcomes[k] for k in in_data_order]
    for x in outcomes:
        scorer.add(x)
    for k in in_data_order:
        for (reader, _, _), x in zip(readers, read[k]):
            reader.add(x)
    for reader, path, reader_key in readers:
        reader.save(path, reader_key)
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
    beside the shard, for the reduce's `head_table`. Only `paper` and `all` have them: `topk`'s
    kept types come from dataset-wide rates."""
    arrays = {k: np.concatenate([r[k] for r in rows]) for k in ("layer", "head", "score")}
    arrays["sample_id"] = np.concatenate([r["sample_id"] for r in rows]).astype(str)
    return write_npz(heads_path(shard_path), arrays)


def head_table(shard_paths: list[str]) -> dict[str, Any] | None:
    """Dataset CAT-score of every (layer, head): the mean over samples with a score, from the
    shards' per-head rows (`write_head_rows`). {"n_heads": H, "scores": L x H, null where no
    sample has a score}, or None where the shards have no per-head rows."""
    files = [heads_path(p) for p in shard_paths if heads_path(p).exists()]
    if not files:
        return None
    layer, head, score = [], [], []
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            layer.append(z["layer"]), head.append(z["head"]), score.append(z["score"])
    layer, head, score = np.concatenate(layer), np.concatenate(head), np.concatenate(score)
    sel = (head >= 0) & ~np.isnan(score)
    n_layers, n_heads = int(layer.max()) + 1, int(head.max()) + 1
    total = np.zeros((n_layers, n_heads))
    count = np.zeros((n_layers, n_heads))
    np.add.at(total, (layer[sel], head[sel]), score[sel])
    np.add.at(count, (layer[sel], head[sel]), 1)
    mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return {"n_heads": n_heads, "scores": [[None if np.isnan(v) else round(float(v), 6) for v in row] for row in mean]}


@step_output(
    lambda a: StepOutput(
        Path(a["out_dir"], "summary.json"),
        a["key"],
        also=lambda: reduce_tables(a["out_dir"]),
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
    rows have `head` "mean"; `heads` is the layer x head table, `head_table`), so that nothing
    after the reduce reads the shards; returns the summary's path.
    """
    import pyarrow.parquet as pq

    from codeprobe.probes.cat.scorer import CATAccumulator

    out = Path(out_dir)
    done = out / "summary.json"
    extraction = settings["extraction"]
    loaded = model_for(model, extraction)
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
        {
            "method": "CAT-probing",
            "language": language,
            "model": info.as_dict(),
            "layers": layers,
            "heads": head_table(shard_paths),
            "settings": meta,
        },
        key,
    )

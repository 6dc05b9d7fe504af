"""Attention-head relations' steps: one per shard (the heads scores of its snippets, read from
CAT-probing's forward pass where the settings allow, else from a pass of its own), the
random-weights model's pass over the validation and test snippets, and the reduce (one relation
vocabulary, the frequent relations, best heads chosen on validation and reported on test);
`run` submits them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from codeprobe.files import write_npz
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.data import read_snippets, read_splits
from codeprobe.pipeline.methods.heads.reader import ShardReader, load_shards
from codeprobe.pipeline.registry import AttentionShare, Target
from codeprobe.pipeline.runfolder import ResultFolder, StepOutput, is_done, recorded_key, step_output, write_step_json
from codeprobe.pipeline.steps import Steps, device_lock, model_for, random_weights_for
from codeprobe.progress import progress
from codeprobe.provenance import step_key, versions

NAME = "heads"  # the method's name: its config section and its folder, RUN/heads/
RANDOM_WEIGHTS_FILE = "random_weights.npz"
SNIPPETS_FILE = "test_snippets.npz"  # the reduce's per-test-snippet hits (`SnippetHits`)
REPORTED_SPLITS = ("valid", "test")  # the best heads are chosen on valid and reported on test


def shard_settings(cfg: RunConfig, language: str, decoder: bool) -> dict[str, Any]:
    """What shapes a shard's heads scores, as JSON values: the scores' conventions (causal for a
    decoder), the rule baselines' offsets and keywords, the seed, how the model reads the
    snippets, the grammar and the library versions."""
    from codeprobe.syntax import grammar_info, keywords

    h = cfg.heads
    grammar = grammar_info(language)
    return {
        "ks": list(h.ks),
        "causal": bool(decoder),
        "max_offset": h.max_offset,
        "keywords": list(keywords(language)) if h.keywords else [],
        "seed": cfg.seed,
        "max_subwords": h.max_subwords,
        "allow_parse_errors": h.allow_parse_errors,
        "extraction": cfg.extraction.model_dump(mode="json"),
        "grammar": {"package": grammar.package, "version": grammar.package_version},
        "versions": versions(),
    }


def _is_decoder(target: Target) -> bool:
    return target.model_id.get("kind") == "decoder"


def _shards(cfg: RunConfig, target: Target, shard_size: int) -> tuple[dict[str, Any], list[str], list[str]]:
    """(settings, per-shard paths, per-shard keys)."""
    settings = shard_settings(cfg, target.language, _is_decoder(target))
    n_shards = target.n_shards(shard_size)
    where = (target.model_id, target.data_key)
    keys = [
        step_key("heads-shard", {"where": where, "shard": k, "shard_size": shard_size, "settings": settings})
        for k in range(n_shards)
    ]
    # The heads folder, also when `target` is the sharing method's (its results are its own).
    folder = target.results_of(NAME)
    return settings, [str(folder.shard(k)) for k in range(n_shards)], keys


def attention_share(cfg: RunConfig, target: Target, shard_size: int) -> AttentionShare | None:
    """What CAT-probing's pass computes for this method: the shards' heads scores, where that
    pass reads the snippets as this method would (the source as given, the same input limit and
    parse-error rule, every head's attention: heads pooled by mean)."""
    cat, h = cfg.cat, cfg.heads
    if h is None or cat is None:
        return None
    if (cat.model_input, cat.head_pooling, cat.max_subwords, cat.allow_parse_errors) != (
        "source",
        "mean",
        h.max_subwords,
        h.allow_parse_errors,
    ):
        return None
    settings, paths, keys = _shards(cfg, target, shard_size)
    return AttentionShare(NAME, settings, tuple(paths), tuple(keys))


def read_attention(settings: dict[str, Any], language: str) -> ShardReader:
    """The shard reader an `AttentionShare`'s settings describe."""
    return ShardReader(settings, language)


def _probe(settings: dict[str, Any]):
    """A CATProbe whose stream gives every head's attention pooled to the code tokens (its
    scores are not used)."""
    from codeprobe.probes.cat.probe import CATProbe

    return CATProbe(
        types="all",
        per_head=True,
        max_subwords=settings["max_subwords"],
        allow_parse_errors=settings["allow_parse_errors"],
        batch_size=settings["extraction"]["batch_size"],
        random_state=settings["seed"],
    )


def _read(reader: ShardReader, snippets: list, extractor, language: str, probe) -> None:
    """Feed `snippets` through the model into `reader`, in their order (read shortest first, as
    CAT-probing's pass does, so that each batch holds similar lengths)."""
    from codeprobe.prefetch import threaded_map

    order = sorted(range(len(snippets)), key=lambda i: len(snippets[i].code))
    outcomes = list(threaded_map(reader.first_pass, probe.inputs([snippets[i] for i in order], extractor, language)))
    for k in np.argsort(order, kind="stable"):
        reader.add(outcomes[k])


@step_output(lambda a: StepOutput(a["out_path"], a["key"]))
def heads_shard(
    model: str,
    language: str,
    data_dir: str,
    shard: int,
    shard_size: int,
    settings: dict[str, Any],
    out_path: str,
    key: str,
) -> str:
    """The heads scores of one shard from a forward pass of its own (where CAT-probing's pass
    could not share it, or its file is gone): the same file, with the same key, as the shared
    pass writes. Returns `out_path`."""
    snippets = read_snippets(data_dir)[shard * shard_size : (shard + 1) * shard_size]
    probe = _probe(settings)
    reader = ShardReader(settings, language)
    extraction = settings["extraction"]
    with device_lock(extraction["device"]):
        extractor = probe.extractor(model_for(model, extraction))
        _read(reader, snippets, extractor, language, probe)
    return str(reader.save(out_path, key))


@step_output(lambda a: StepOutput(a["out_path"], a["key"]))
def heads_random_weights(
    model: str, language: str, data_dir: str, settings: dict[str, Any], out_path: str, key: str
) -> str:
    """The heads scores of the validation and test snippets through the model's random-weights
    twin (`codeprobe.model.random_weights`, seeded by the run's seed), for the random-weights
    baseline. Returns `out_path`."""
    splits = read_splits(data_dir)
    wanted = {i for name in REPORTED_SPLITS for i in splits[name]}
    snippets = [s for s in read_snippets(data_dir) if s.id in wanted]
    probe = _probe(settings)
    reader = ShardReader(settings, language)
    extraction = settings["extraction"]
    with device_lock(extraction["device"]):
        twin = random_weights_for(model, extraction, settings["seed"])
        _read(reader, snippets, probe.extractor(twin), language, probe)
    return str(reader.save(out_path, key))


def frequent_codes(counts: np.ndarray, min_count: int) -> np.ndarray:
    """Relabelling codes (`HeadsAccumulator.relabelled`) that keep the relations with at least
    `min_count` edges, renumbered in order, and drop the rest (-1)."""
    keep = np.asarray(counts) >= min_count
    return np.where(keep, np.cumsum(keep) - 1, -1).astype(np.int64)


def _edge_counts(scores, n_relations: int) -> np.ndarray:
    t = scores.tables()
    return np.bincount(t["q_relation"], weights=t["q_edges"], minlength=n_relations).astype(np.int64)


@step_output(
    lambda a: StepOutput(Path(a["out_dir"], "summary.json"), a["key"], also=lambda: [Path(a["out_dir"], SNIPPETS_FILE)])
)
def heads_reduce(
    model: str,
    language: str,
    data_dir: str,
    shard_paths: list[str],
    random_weights_path: str | None,
    settings: dict[str, Any],
    reduce_settings: dict[str, Any],
    out_dir: str,
    key: str,
) -> str:
    """The shards in one vocabulary, the relations with at least `min_count` edges in the data,
    and per relation the best head chosen on validation and reported on test against every
    baseline (`codeprobe.probes.heads.evaluate`); writes the test snippets' hits
    (`SNIPPETS_FILE`, `SnippetHits.to_arrays`), then summary.json recording `key`, and returns
    the summary's path."""
    from codeprobe.probes.heads import evaluate

    shards = load_shards(shard_paths)
    counts = _edge_counts(shards.scores, len(shards.names))
    codes = frequent_codes(counts, reduce_settings["min_count"])
    names = [n for n, c in zip(shards.names, codes) if c >= 0]
    scores = shards.scores.relabelled(codes)
    splits = read_splits(data_dir)
    valid, test = scores.subset(splits["valid"]), scores.subset(splits["test"])
    weights = None
    if random_weights_path is not None:
        twin = load_shards([random_weights_path])
        position = {n: i for i, n in enumerate(names)}
        twin_codes = np.asarray([position.get(n, -1) for n in twin.names], dtype=np.int64)
        twin_scores = twin.scores.relabelled(twin_codes)
        weights = (twin_scores.subset(splits["valid"]), twin_scores.subset(splits["test"]))
    result = evaluate(valid, test, relation_names=names, random_weights=weights, random_state=settings["seed"])
    extraction = settings["extraction"]
    info = model_for(model, extraction).info
    rare = {n: int(c) for n, c, code in zip(shards.names, counts.tolist(), codes.tolist()) if code < 0}
    write_npz(Path(out_dir, SNIPPETS_FILE), result.snippets.to_arrays())
    return write_step_json(
        Path(out_dir, "summary.json"),
        {
            "method": "attention-head relations",
            "language": language,
            "model": info.as_dict(),
            "relations": [{"name": n, "edges": int(c)} for n, c in zip(names, counts[codes >= 0].tolist())],
            "rare_relations": rare,
            "inputs": {
                "snippets": len(shards.scores.sample_ids) + len(shards.skipped),
                "used": len(shards.scores.sample_ids),
                "used_as": f"scored ({len(valid.sample_ids)} validation, {len(test.sample_ids)} test)",
                "validation": len(valid.sample_ids),
                "test": len(test.sample_ids),
                "dropped": dict(sorted(Counter(shards.skipped.values()).items())),
                "truncated": shards.truncated,
                "max_subwords": settings["max_subwords"],
                "dropped_edges": shards.dropped_edges,
            },
            "result": result.as_dict(),
            "settings": {**settings, **reduce_settings},
        },
        key,
    )


def run(cfg: RunConfig, steps: Steps, target: Target, log) -> None:
    """A step per shard (done already where CAT-probing's pass shared it), the random-weights
    model's pass, then the reduce."""
    settings, paths, keys = _shards(cfg, target, cfg.extraction.shard_size)
    h = cfg.heads
    rw_key = step_key("heads-random-weights", {"where": (target.model_id, target.data_key), "settings": settings})
    rw_path = str(target.results.file(RANDOM_WEIGHTS_FILE)) if h.random_weights else None
    reduce_settings = {"min_count": h.min_count, "dependent": h.dependent, "random_weights": h.random_weights}
    reduce_key = step_key(
        "heads-reduce",
        {
            "shards": keys,
            "random_weights": rw_key if h.random_weights else None,
            "settings": reduce_settings,
            # What the reduce writes: a reduce of an earlier codeprobe, without the per-snippet
            # hits the series' onsets read, is done again.
            "files": ["summary.json", SNIPPETS_FILE],
        },
    )
    if is_done(target.results.file("summary.json"), reduce_key):
        log.info("heads %s / %s: scored (done earlier)", target.model, target.language)
        return
    size = cfg.extraction.shard_size
    futures = [
        steps.submit(
            "heads-shard", heads_shard, target.model, target.language, target.data_dir, k, size, settings, path, key
        )
        for k, (path, key) in enumerate(zip(paths, keys))
    ]
    if rw_path is not None:
        futures.append(
            steps.submit(
                "heads-random-weights",
                heads_random_weights,
                target.model,
                target.language,
                target.data_dir,
                settings,
                rw_path,
                rw_key,
            )
        )
    for future in progress(futures, desc=f"heads {target.model}", unit="step", inner=False):
        future.result()
    steps.submit(
        "heads-reduce",
        heads_reduce,
        target.model,
        target.language,
        target.data_dir,
        paths,
        rw_path,
        settings,
        reduce_settings,
        str(target.results.path),
        reduce_key,
    ).result()
    log.info("heads %s / %s: scored", target.model, target.language)


def intermediates(folder: ResultFolder) -> list[Path]:
    """The shards' files and the random-weights pass's, once the reduce has written its summary
    (which holds all that the reports read of them)."""
    if recorded_key(folder.file("summary.json")) is None:
        return []
    return [
        *folder.shards(),
        *([folder.file(RANDOM_WEIGHTS_FILE)] if folder.file(RANDOM_WEIGHTS_FILE).exists() else []),
    ]

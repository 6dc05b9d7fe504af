"""One AST-Probe experiment end to end: dataset -> splits -> vectors -> layer sweep (and
optionally a rank sweep) -> baselines -> summary.json, tables and plots. The CLI's `astprobe
train` is a thin wrapper around `run_experiment`."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from codeprobe.datasets import SkipCounter, dedupe, load_dataset, max_length, parses_cleanly, sample, split
from codeprobe.errors import InputError
from codeprobe.model import Extractor, load_model
from codeprobe.probes.astprobe.data import ensure_nonempty, prepare_split
from codeprobe.probes.astprobe.estimator import default_cache_dir
from codeprobe.probes.astprobe.sweeps import SweepPoint, layer_sweep, plot, random_weights, rank_sweep, table
from codeprobe.probes.astprobe.training import TrainConfig
from codeprobe.syntax import grammar_info
from codeprobe.syntax.languages import canonical_language

log = logging.getLogger("codeprobe.astprobe")

MAX_CHARS = 20_000


def load_splits(
    dataset: str | os.PathLike,
    language: str,
    *,
    n_snippets: int | None = None,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
):
    """Read a dataset with the pipeline's loaders and cut it into train / valid / test.

    Snippets that do not parse cleanly or repeat another are skipped (and counted); functions
    of one source file stay in one split, so near-copies cannot leak into the test split.

    Returns:
        (Splits, DatasetReport).
    """
    counter = SkipCounter()
    snippets = load_dataset(dataset, language, counter=counter)
    snippets = max_length(snippets, counter, max_chars=MAX_CHARS)
    snippets = dedupe(parses_cleanly(snippets, counter), counter)
    chosen = sample(snippets, n_snippets, seed=seed, counter=counter) if n_snippets else list(snippets)
    parts = split(chosen, fractions, seed=seed, group=_source_file)
    return parts, counter.report()


def run_experiment(
    dataset: str | os.PathLike,
    language: str,
    out_dir: str | os.PathLike,
    *,
    model: str | None = None,
    layers: Sequence[int] | None = None,
    rank: int = 128,
    ranks: Sequence[int] = (),
    n_snippets: int | None = None,
    baselines: bool = True,
    seed: int = 0,
    config: TrainConfig = TrainConfig(),
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    batch_size: int = 16,
) -> dict:
    """Run a layer sweep (and a rank sweep at the best layer if `ranks`), with baselines.

    Writes to `out_dir`: summary.json, layers.md, f1_by_layer.png, probes/layer_LL_rank_RRR/ (real
    model only), and ranks.md / f1_by_rank.png for a rank sweep.

    Returns:
        The summary: `layers` (one object per layer: layer, precision, recall, f1, accuracies,
        training facts), `baselines` (`embedding`: layer 0 of the real model; `random`: the
        random-weights model at the same layers), `ranks`, `best_layer`, the model, data and
        grammar provenance.
    """
    started = time.perf_counter()
    language = canonical_language(language)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    parts, report = load_splits(dataset, language, n_snippets=n_snippets, seed=seed)
    loaded = load_model(model, device=device)
    n_states = loaded.info.n_layers + 1
    layers = list(range(n_states)) if not layers else sorted(set(layers))
    bad = [layer for layer in layers if not 0 <= layer < n_states]
    if bad:
        raise InputError(f"layers {bad} do not exist: {loaded.info.name} has hidden states 0..{n_states - 1}")

    def prepare(loaded_model, label):
        ex = Extractor(loaded_model, batch_size=batch_size, attention=False, vectors=True, length_policy="skip")
        splits = [prepare_split(p, language, ex, cache_root, model_label=label)
                  for p in (parts.train, parts.valid, parts.test)]
        ensure_nonempty(splits, ["training", "validation", "test"])
        return splits

    real = prepare(loaded, None)
    common = {"config": config, "random_state": seed}
    points = layer_sweep(*real, layers, rank, save_dir=out / "probes", model=model, **common)
    summary: dict = {
        "method": "AST-Probe",
        "language": language,
        "grammar": asdict(grammar_info(language)),
        "model": loaded.info.as_dict(),
        "rank": rank,
        "layers": [p.as_dict() for p in points],
        "baselines": {},
        "data": {
            "dataset": str(dataset),
            "report": report.to_dict(),
            "splits": {name: len(s) for name, s in zip(("train", "valid", "test"), real)},
            "dropped": {name: s.dropped for name, s in zip(("train", "valid", "test"), real)},
            "token_vectors": "mean of each code token's subwords, on the original source text",
        },
        "config": asdict(config),
        "seed": seed,
    }
    scored = [p for p in points if p.scores is not None]
    if scored:
        summary["best_layer"] = max(scored, key=lambda p: p.scores.f1).layer
    series: dict[str, Sequence[SweepPoint]] = {loaded.info.name: points}
    reference = {}
    if baselines:
        embedding = next((p for p in points if p.layer == 0), None)
        if embedding is None:
            embedding = layer_sweep(*real, [0], rank, model=model, **common)[0]
        summary["baselines"]["embedding"] = embedding.as_dict()
        if embedding.scores is not None:
            reference["embedding (layer 0)"] = embedding.scores.f1
        random_model = random_weights(loaded, seed)
        random_splits = prepare(random_model, random_model.info.name)
        random_points = layer_sweep(*random_splits, layers, rank, **common)
        summary["baselines"]["random"] = [p.as_dict() for p in random_points]
        summary["baselines"]["random_model"] = random_model.info.name
        series["random weights"] = random_points
    (out / "layers.md").write_text(table(points) + "\n", encoding="utf-8")
    plot(series, "layer", out / "f1_by_layer.png", reference=reference,
         title=f"AST-Probe, {language}, rank {rank}")
    if ranks:
        best = summary.get("best_layer", layers[-1])
        rank_points = rank_sweep(*real, best, ranks, model=model, **common)
        summary["ranks"] = {"layer": best, "points": [p.as_dict() for p in rank_points]}
        (out / "ranks.md").write_text(table(rank_points, by="rank") + "\n", encoding="utf-8")
        plot({loaded.info.name: rank_points}, "rank", out / "f1_by_rank.png",
             title=f"AST-Probe, {language}, layer {best}")
    diverged = [p["layer"] for p in summary["layers"] if p["diverged"]]
    if diverged:
        log.warning("training diverged at layers %s: no scores reported for them", diverged)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def _source_file(snippet) -> str:
    """Group key for splitting: the file of a function extracted from source files (their ids
    are `path::qualified.name:line`), else the snippet itself (dataset rows are independent)."""
    return snippet.id.split("::", 1)[0] if "::" in snippet.id else snippet.id

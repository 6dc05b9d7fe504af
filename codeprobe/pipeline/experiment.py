"""The experiment runner: one RunConfig, one run folder, both methods. It serves the library,
the CLI (`codeprobe astprobe train`, `codeprobe run`) and the Prefect flow alike; only how a
step is executed differs (`Steps`): directly in this process, or as a Prefect task.

    RUN/config.json                                   the RunConfig
    RUN/data/<language>-<dataset>/                    snippets.jsonl, report.json, splits.json
    RUN/cat/<model>/<language>-<dataset>/             shard-NNNN.npz, *.parquet, summary.json
    RUN/astprobe/<model>/<language>-<dataset>/        layers.json, random.json, ranks.json, probes/
    RUN/summary.json, RUN/report.md, RUN/plots/

Every step writes its output atomically and records in it a key (`codeprobe.provenance`) over
everything that shapes it; a step whose output already records its key is not redone. So a
rerun recomputes nothing, a run killed half way resumes from its finished outputs, and a change
of code, data, model weights or library versions recomputes what it touches.

Model selection is on the validation split only: the AST-Probe layer with the best validation
F1 is the best layer, the rank sweep runs there and its best rank is chosen on validation too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from codeprobe.pipeline import tasks, views
from codeprobe.pipeline.config import RunConfig, slug
from codeprobe.pipeline.report import render_report, summarize_run
from codeprobe.probes.astprobe.sweeps import select_on_validation
from codeprobe.progress import progress
from codeprobe.pipeline.series import probed_models
from codeprobe.provenance import dataset_fingerprint, environment, step_key, versions

STEPS: dict[str, Callable[..., str]] = {
    "prepare-data": tasks.prepare_data,
    "cat-shard": tasks.cat_shard,
    "cat-reduce": tasks.cat_reduce,
    "astprobe-sweep": tasks.astprobe_sweep,
    "explorer-sample": views.explorer_sample,
}


class Handle(Protocol):
    def result(self) -> str: ...


class Steps(Protocol):
    """How steps run: `submit(name, *args)` starts step `name` of `STEPS` and returns a handle
    whose `result()` is the step's output path."""

    def submit(self, name: str, *args: Any) -> Handle: ...


class _Done:
    def __init__(self, value: str) -> None:
        self._value = value

    def result(self) -> str:
        return self._value


class LocalSteps:
    """Run each step at once, in this process (the library and the CLI)."""

    def submit(self, name: str, *args: Any) -> Handle:
        return _Done(STEPS[name](*args))


def preflight(cfg: RunConfig) -> dict[str, Any]:
    """Fail at once, before any work, on a model that cannot load, a dataset that cannot be
    read, an unknown language or a bad setting. Returns the provenance of each model to probe
    (for a checkpoint series, its finished checkpoints as found now: `codeprobe.pipeline.series`),
    by the name the steps load it by."""
    from codeprobe.datasets import SkipCounter, load_dataset
    from codeprobe.errors import InputError
    from codeprobe.probes.cat.types import check_strategy
    from codeprobe.syntax.languages import canonical_language

    for language in cfg.languages:
        canonical_language(language)
        if cfg.cat and cfg.cat_types != "auto":
            check_strategy(cfg.cat_types, language)
    if cfg.probe_seeds < 1:
        raise InputError(f"probe_seeds must be at least 1, not {cfg.probe_seeds}")
    for dataset in cfg.datasets:
        for language in cfg.languages:
            load_dataset(dataset, language, counter=SkipCounter())  # checks the source up front
    if cfg.dtype not in ("float32", "bfloat16", "float16"):
        raise InputError(f"dtype must be float32, bfloat16 or float16, not {cfg.dtype!r}")
    infos = {m.name: tasks.loaded_model(m.name, cfg.device, cfg.dtype).info for spec in cfg.models for m in probed_models(spec)}
    for model, info in infos.items():
        bad = [layer for layer in cfg.layers if not 0 <= layer <= info.n_layers]
        if bad and cfg.astprobe:
            raise InputError(f"layers {bad} do not exist: {info.name} has hidden states 0..{info.n_layers}")
    return infos


def claim_run_folder(run: Path, cfg: RunConfig) -> None:
    """Write RUN/config.json, or check that the folder already holds this same experiment: a run
    folder is one experiment, so reruns resume it and a different config needs a new folder."""
    from codeprobe.errors import InputError

    path = run / "config.json"
    if path.exists():
        if RunConfig.read(path) != cfg:
            raise InputError(f"{run} holds a run with a different config; choose another output folder")
        return
    run.mkdir(parents=True, exist_ok=True)
    tasks.write_atomic(path, cfg.to_json())


def shares_forward_pass(cfg: RunConfig) -> bool:
    """Whether CAT-probing's forward pass also computes AST-Probe's token vectors: both methods
    run and read the same text (the source as given). Only snippets CAT-probing reads whole
    are shared: its 256-subword cut never changes what AST-Probe sees."""
    return (cfg.cat and cfg.astprobe and cfg.cat_model_input == "source"
            and cfg.astprobe_model_input == "source" and not cfg.remove_docstrings)


def cat_settings(cfg: RunConfig, language: str) -> dict[str, Any]:
    from codeprobe.probes.cat.types import default_strategy
    from codeprobe.syntax import grammar_info

    grammar = grammar_info(language)
    return {
        "types": default_strategy(language) if cfg.cat_types == "auto" else cfg.cat_types,
        "distance": cfg.cat_distance,
        "quantile": cfg.quantile,
        "seed": cfg.seed,
        "max_subwords": cfg.cat_max_subwords,
        "per_head": cfg.cat_per_head,
        "model_input": cfg.cat_model_input,
        "head_pooling": cfg.cat_head_pooling,
        "batch_size": cfg.batch_size,
        "device": cfg.device,
        "dtype": cfg.dtype,
        "vector_tokens": ({"drop_line_continuations": cfg.drop_line_continuations}
                          if shares_forward_pass(cfg) else None),
        "grammar": {"package": grammar.package, "version": grammar.package_version},
        "versions": versions(),
    }


def astprobe_settings(cfg: RunConfig, run: Path) -> dict[str, Any]:
    return {"seed": cfg.seed, "seeds": [cfg.seed + k for k in range(cfg.probe_seeds)],
            "batch_size": cfg.batch_size, "device": cfg.device, "dtype": cfg.dtype,
            "train": cfg.train_settings(),
            "preprocessing": {"remove_docstrings": cfg.remove_docstrings,
                              "drop_line_continuations": cfg.drop_line_continuations,
                              "model_input": cfg.astprobe_model_input},
            "cache_dir": str(run / "cache" / "vectors")}


def run_experiment(cfg: RunConfig, out_dir: str | Path, steps: Steps | None = None,
                   log: logging.Logger | logging.LoggerAdapter | None = None) -> Path:
    """Run every (model, language, dataset) of `cfg` into `out_dir`; write summary.json and
    report.md. Returns the report's path.

    Raises:
        ModelLoadError, DatasetError, InputError: before any work, on a model or dataset that
            cannot be used, or a run folder that holds another experiment.
    """
    log = log or logging.getLogger("codeprobe.pipeline")
    steps = steps or LocalSteps()
    run = Path(out_dir).resolve()
    started = time.perf_counter()
    infos = preflight(cfg)
    claim_run_folder(run, cfg)
    stage_seconds: dict[str, float] = {}

    def timed(stage: str, fn, *args) -> None:
        t0 = time.perf_counter()
        fn(*args)
        stage_seconds[stage] = round(stage_seconds.get(stage, 0.0) + time.perf_counter() - t0, 1)
        log.info("%s: %.1f s", stage, time.perf_counter() - t0)

    for probed in (m for spec in cfg.models for m in probed_models(spec) if m.name in infos):
        model, info = probed.name, infos[probed.name]
        model_id = {"name": model, **info.as_dict(), **probed.key_fields()}
        n_states = info.n_layers + 1
        layers = sorted(set(cfg.layers)) if cfg.layers else list(range(n_states))
        for language in cfg.languages:
            for dataset in cfg.datasets:
                key = f"{language}-{slug(dataset)}"
                t0 = time.perf_counter()
                data_key = step_key("prepare-data", {
                    "dataset": dataset, "content": dataset_fingerprint(dataset, language),
                    "language": language, "n_snippets": cfg.n_snippets, "seed": cfg.seed})
                data_dir = steps.submit("prepare-data", dataset, language, cfg.n_snippets, cfg.seed,
                                        str(run / "data" / key), data_key).result()
                stage_seconds["data"] = round(stage_seconds.get("data", 0.0) + time.perf_counter() - t0, 1)
                n = sum(1 for _ in open(Path(data_dir) / "snippets.jsonl", encoding="utf-8"))
                log.info("%s / %s / %s: %d snippets", model, language, dataset, n)
                where = (model_id, data_key)
                shared: dict[str, str] = {}  # CAT shard key -> its vector store
                if cfg.cat:
                    timed("CAT-probing", _run_cat, cfg, steps, where, model, language, data_dir, n,
                          run / "cat" / probed.folder / key, shared, log)
                if cfg.astprobe:
                    timed("AST-Probe", _run_astprobe, cfg, steps, where, model, language, data_dir, layers,
                          run / "astprobe" / probed.folder / key, run, shared, log)

    summary = summarize_run(run, seconds=time.perf_counter() - started, versions=environment(),
                            stages=stage_seconds)
    for job in views.explorer_jobs(run, cfg, summary):  # the HTML report's snippet explorer
        t0 = time.perf_counter()
        made_from = [Path(job["data_dir"]) / tasks.SPLITS_FILE]
        made_from += [Path(job["cat_summary"])] if job["cat_summary"] else []
        made_from += [Path(job["probe_dir"]).parents[1] / "layers.json"] if job["probe_dir"] else []
        key = step_key("explorer-sample", {**job, "made_from": [tasks.recorded_key(p) for p in made_from]})
        steps.submit("explorer-sample", *job.values(), key).result()
        log.info("explorer sample %s: %.1f s", job["out_path"], time.perf_counter() - t0)
    report = render_report([run], run / "report.md")
    views.write_report_html([run], run / "report.html")
    log.info("report: %s", report)
    return report


def _run_cat(cfg, steps, where, model, language, data_dir, n, out: Path, shared: dict[str, str], log) -> None:
    settings = cat_settings(cfg, language)
    n_shards = max(1, -(-n // cfg.shard_size))
    keys = [step_key("cat-shard", {"where": where, "shard": k, "shard_size": cfg.shard_size,
                                   "settings": settings}) for k in range(n_shards)]
    futures = [steps.submit("cat-shard", model, language, data_dir, k, cfg.shard_size, settings,
                            str(out / f"shard-{k:04d}.npz"), keys[k]) for k in range(n_shards)]
    paths = []
    for k, future in enumerate(progress(futures, desc=f"CAT {model}", unit="shard", inner=False)):
        paths.append(future.result())
        if settings["vector_tokens"] is not None:
            shared[keys[k]] = str(tasks.vector_store_path(paths[-1]))
        log.info("CAT %s / %s: shard %d/%d done", model, language, k + 1, n_shards)
    reduce_key = step_key("cat-reduce", {"shards": keys, "settings": settings})
    steps.submit("cat-reduce", model, language, paths, settings, str(out), reduce_key).result()
    log.info("CAT %s / %s: scored", model, language)


def _run_astprobe(cfg, steps, where, model, language, data_dir, layers, out: Path, run: Path,
                  shared: dict[str, str], log) -> None:
    # The stores CAT-probing's pass wrote enter the key by their shards' keys, not by their paths.
    settings = {**astprobe_settings(cfg, run), "reuse": list(shared.values())}
    pathless = {k: v for k, v in settings.items() if k not in ("cache_dir", "reuse")}

    def submit(name: str, points: list[tuple[int, int]], weights: str):
        key = step_key("astprobe-sweep", {"where": where, "points": points, "weights": weights,
                                          "settings": pathless,
                                          **({"reused": sorted(shared)} if weights == "pretrained" else {})})
        return steps.submit("astprobe-sweep", model, language, data_dir, points, weights, settings,
                            str(out / name), key)

    # Layer 0 (the embeddings) is always probed: it is the embedding baseline.
    real = submit("layers.json", [(layer, cfg.rank) for layer in sorted({0, *layers})], "pretrained")
    random = submit("random.json", [(layer, cfg.rank) for layer in layers], "random") if cfg.random_baseline else None
    points = tasks.read_json(real.result())["points"]
    best = select_on_validation(points, "layer", among=layers)
    log.info("AST-Probe %s / %s: best layer on validation %s", model, language, best)
    if random is not None:
        random.result()
    if cfg.ranks and best is not None:
        # The layer sweep already holds (best, cfg.rank): the rank sweep adds the other ranks.
        submit("ranks.json", [(best, rank) for rank in sorted(set(cfg.ranks) - {cfg.rank})], "pretrained").result()
        log.info("AST-Probe %s / %s: rank sweep at layer %d done", model, language, best)


def run(config: RunConfig | dict | None = None, out_dir: str | Path = "runs/main") -> Path:
    """Library entry point: run an experiment in this process (no Prefect server needed)."""
    cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(
        asdict(RunConfig()) if config is None else config)
    return run_experiment(cfg, out_dir)

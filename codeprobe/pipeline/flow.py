"""The probing flow: models x languages x datasets, CAT-probing and AST-Probe, into a run folder.

    RUN_DIR/config.json                  the RunConfig
    RUN_DIR/data/<language>-<dataset>/   sampled snippets, splits, skip counts
    RUN_DIR/cat/<model>/<language>-<dataset>/        shard-NNNN.npz, *.parquet, summary.json
    RUN_DIR/astprobe/<model>/<language>-<dataset>/   points/*.json, points/probes/
    RUN_DIR/summary.json, RUN_DIR/report.md, RUN_DIR/plots/

Tasks pass keys and paths, never tensors, and are cached on their inputs and source
(`INPUTS + TASK_SOURCE`) in `RUN_DIR/.prefect`: rerunning a finished run recomputes nothing, and
a run killed half way resumes from its finished shards and probe points.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import INPUTS, TASK_SOURCE
from prefect.filesystems import LocalFileSystem
from prefect.task_runners import ThreadPoolTaskRunner

from codeprobe.pipeline import tasks, views
from codeprobe.pipeline.config import RunConfig, slug
from codeprobe.pipeline.report import render_report, summarize_run
from codeprobe.progress import outer_only, progress

CACHE = INPUTS + TASK_SOURCE
_TASK_OPTIONS = {"cache_policy": CACHE, "persist_result": True, "retries": 0}

prepare_data = task(tasks.prepare_data, name="prepare-data", **_TASK_OPTIONS)
cat_shard = task(tasks.cat_shard, name="cat-shard", **_TASK_OPTIONS)
cat_reduce = task(tasks.cat_reduce, name="cat-reduce", **_TASK_OPTIONS)
astprobe_point = task(tasks.astprobe_point, name="astprobe-point", **_TASK_OPTIONS)
explorer_sample = task(views.explorer_sample, name="explorer-sample", **_TASK_OPTIONS)


def versions() -> dict[str, str]:
    """Versions of everything that shapes the numbers, recorded with every run."""
    names = ["codeprobe", "torch", "transformers", "tokenizers", "tree-sitter", "numpy", "prefect",
             "tree-sitter-python", "tree-sitter-java", "tree-sitter-javascript", "tree-sitter-go",
             "tree-sitter-php", "tree-sitter-ruby"]
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def preflight(cfg: RunConfig) -> dict[str, Any]:
    """Fail at once, before any work, on a model that cannot load, a dataset that cannot be
    read, an unknown language or a bad setting. Returns each model's provenance."""
    from codeprobe.datasets import SkipCounter, load_dataset
    from codeprobe.probes.cat.types import check_strategy
    from codeprobe.syntax.languages import canonical_language

    for language in cfg.languages:
        canonical_language(language)
        if cfg.cat and cfg.cat_types != "auto":
            check_strategy(cfg.cat_types, language)
    for dataset in cfg.datasets:
        for language in cfg.languages:
            load_dataset(dataset, language, counter=SkipCounter())  # checks the source up front
    return {model: tasks.loaded_model(model, cfg.device).info for model in cfg.models}


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


def result_storage(run: Path) -> str:
    """A local-file-system block rooted in RUN/.prefect: task results and cache records live
    with the run, so deleting the folder forgets them too."""
    name = "codeprobe-run-" + hashlib.sha1(str(run).encode()).hexdigest()[:16]
    LocalFileSystem(basepath=str(run / ".prefect")).save(name, overwrite=True)
    return f"local-file-system/{name}"


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
        "batch_size": cfg.batch_size,
        "device": cfg.device,
        "grammar": {"package": grammar.package, "version": grammar.package_version},
        "versions": versions(),
    }


@flow(name="codeprobe-probing", task_runner=ThreadPoolTaskRunner(max_workers=4), validate_parameters=False)
@outer_only()  # the run's own bars only: tasks' threads would draw over each other
def probing_flow(config: dict[str, Any] | None = None, out_dir: str = "runs/main") -> str:
    """Run CAT-probing and AST-Probe over every (model, language, dataset) of `config`.

    Args:
        config: a RunConfig as a dict (JSON-able, so deployments can pass it); None = defaults.
        out_dir: the run folder; strftime fields (e.g. "runs/%Y%m%d") are filled in at start,
            so a scheduled deployment can write each run to its own folder.
    Returns:
        The path of the run's report.md.
    """
    log = get_run_logger()
    cfg = RunConfig.from_dict(config or {})
    run = Path(time.strftime(out_dir)).resolve()
    started = time.perf_counter()
    infos = preflight(cfg)
    claim_run_folder(run, cfg)
    opts = {"result_storage": result_storage(run)}

    for model in cfg.models:
        info = infos[model]
        n_states = info.n_layers + 1
        layers = sorted(set(cfg.layers)) if cfg.layers else list(range(n_states))
        for language in cfg.languages:
            for dataset in cfg.datasets:
                key = f"{language}-{slug(dataset)}"
                data_dir = prepare_data.with_options(**opts).submit(
                    dataset, language, cfg.n_snippets, cfg.seed, str(run / "data" / key)
                ).result()
                n = sum(1 for _ in open(Path(data_dir) / "snippets.jsonl", encoding="utf-8"))
                log.info("%s / %s / %s: %d snippets", model, language, dataset, n)
                if cfg.cat:
                    _run_cat(cfg, opts, model, language, data_dir, n, run / "cat" / slug(model) / key, log)
                if cfg.astprobe:
                    _run_astprobe(cfg, opts, model, language, data_dir, layers,
                                  run / "astprobe" / slug(model) / key, run, log)

    summary = summarize_run(run, seconds=time.perf_counter() - started, versions=versions())
    for job in views.explorer_jobs(run, cfg, summary):  # the report's snippet explorer
        explorer_sample.with_options(**opts).submit(**job).result()
    report = render_report([run], run / "report.md")
    views.write_report_html([run], run / "report.html")
    create_markdown_artifact(markdown=report.read_text(encoding="utf-8"), key="codeprobe-report",
                             description=f"codeprobe run {run}")
    rows = summary_rows(summary)
    if rows:
        create_table_artifact(table=rows, key="codeprobe-layers", description="per-layer scores")
    log.info("report: %s", report)
    return str(report)


def _run_cat(cfg, opts, model, language, data_dir, n, out: Path, log) -> None:
    settings = cat_settings(cfg, language)
    n_shards = max(1, -(-n // cfg.shard_size))
    futures = [
        cat_shard.with_options(**opts).submit(model, language, data_dir, k, cfg.shard_size, settings,
                                              str(out / f"shard-{k:04d}.npz"))
        for k in range(n_shards)
    ]
    paths = []
    for k, future in enumerate(progress(futures, desc=f"CAT {model}", unit="shard", inner=False)):
        paths.append(future.result())
        log.info("CAT %s / %s: shard %d/%d done", model, language, k + 1, n_shards)
    cat_reduce.with_options(**opts).submit(model, language, paths, settings, str(out)).result()
    log.info("CAT %s / %s: scored", model, language)


def _run_astprobe(cfg, opts, model, language, data_dir, layers, out: Path, run: Path, log) -> None:
    settings = {"seed": cfg.seed, "batch_size": cfg.batch_size, "device": cfg.device,
                "max_epochs": cfg.max_epochs, "patience": cfg.patience,
                "cache_dir": str(run / "cache" / "vectors")}
    point = astprobe_point.with_options(**opts)

    def submit(layer: int, rank: int, random_weights: bool):
        name = f"layer_{layer:02d}_rank_{rank:03d}{'_random' if random_weights else ''}.json"
        return point.submit(model, language, data_dir, layer, rank, random_weights, settings,
                            str(out / "points" / name))

    real = [(layer, submit(layer, cfg.rank, False)) for layer in layers]
    randoms = [(layer, submit(layer, cfg.rank, True)) for layer in layers] if cfg.random_baseline else []
    best_layer, best_f1 = None, -1.0
    for layer, future in progress(real, desc=f"AST-Probe {model}", unit="layer", inner=False):
        result = tasks.read_json(future.result())
        log.info("AST-Probe %s / %s: layer %d F1 %s", model, language, layer, result.get("f1"))
        if result.get("f1") is not None and result["f1"] > best_f1:
            best_layer, best_f1 = layer, result["f1"]
    for layer, future in randoms:
        future.result()
        log.info("AST-Probe %s / %s: random-weights layer %d done", model, language, layer)
    if cfg.ranks and best_layer is not None:
        for rank in sorted(set(cfg.ranks) - {cfg.rank}):
            submit(best_layer, rank, False).result()
            log.info("AST-Probe %s / %s: rank %d at layer %d done", model, language, rank, best_layer)


def summary_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat per-layer rows (for a Prefect table artifact) from a run summary."""
    rows = []
    for result in summary.get("results", []):
        base = {"model": result["model"], "language": result["language"], "dataset": result["dataset"]}
        for layer in (result.get("cat") or {}).get("layers", []):
            rows.append({**base, "method": "CAT", "layer": layer["layer"], "score": layer["score"],
                         "random": layer["random_baseline"], "positional": layer["positional_baseline"]})
        for layer in (result.get("astprobe") or {}).get("layers", []):
            rows.append({**base, "method": "AST-Probe F1", "layer": layer["layer"], "score": layer["f1"]})
    return rows


def main_job(out_dir: str = "runs/main", config: RunConfig | None = None) -> str:
    """The main job: the probing flow on the packaged default model over Python standard-library
    functions, both methods. Returns the report's path."""
    cfg = config or RunConfig()
    logging.getLogger("codeprobe").setLevel(logging.INFO)
    return probing_flow(config=asdict(cfg), out_dir=out_dir)

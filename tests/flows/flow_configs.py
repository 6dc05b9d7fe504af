"""Small RunConfigs for the pipeline tests, and what a rerun of one must leave untouched."""

from __future__ import annotations

from pathlib import Path


def step_outputs(run: Path) -> dict[str, int]:
    """mtime of every step output (shards, probe points, data): what a rerun must not rewrite
    (codeprobe's integrity records and locks, `.<name>.sum` and `.<name>.lock`, left out)."""
    files = [
        *run.glob("cat/*/*/shard-*.npz"),
        *run.glob("cat/*/*/summary.json"),
        *run.glob("astprobe/*/*/*.json"),
        *run.glob("heads/*/*/*.npz"),
        *run.glob("heads/*/*/summary.json"),
        *run.glob("structural/*/*/*.json"),
        *run.glob("diagnostic/*/*/*.json"),
        *run.glob("data/*/*.json*"),
    ]
    return {str(p): p.stat().st_mtime_ns for p in files if not p.name.startswith(".")}


def small_config(model_dir, dataset, **overrides) -> dict:
    """A RunConfig dict that runs in seconds on a tiny model."""
    from codeprobe.pipeline.config import RunConfig

    settings = dict(
        models=(str(model_dir),),
        languages=("python",),
        datasets=(str(dataset),),
        n_snippets=24,
        shard_size=8,
        layers=(0, 1, 2),
        ranks=(16,),
        rank=32,
        max_epochs=2,
        patience=1,
        batch_size=8,
        heads={"min_count": 5},  # 24 snippets: the default 100 edges would leave no relation
    )
    settings.update(overrides)
    return RunConfig.model_validate(settings).to_dict() if "dtype" not in overrides else _flat(settings)


def _flat(settings: dict) -> dict:
    """The settings as given (flat keys, lists for tuples): for configs that must fail later."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}

"""Small RunConfigs for the pipeline tests."""

from __future__ import annotations


def small_config(model_dir, dataset, **overrides) -> dict:
    """A RunConfig dict that runs in seconds on a tiny model."""
    from dataclasses import asdict

    from codeprobe.pipeline.config import RunConfig

    settings = dict(models=(str(model_dir),), languages=("python",), datasets=(str(dataset),),
                    n_snippets=24, shard_size=8, layers=(0, 1, 2), ranks=(16,), rank=32,
                    max_epochs=2, patience=1, batch_size=8)
    settings.update(overrides)
    return asdict(RunConfig(**settings))

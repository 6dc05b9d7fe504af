"""Small RunConfigs for the pipeline tests."""

from __future__ import annotations


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
    )
    settings.update(overrides)
    return RunConfig.model_validate(settings).to_dict() if "dtype" not in overrides else _flat(settings)


def _flat(settings: dict) -> dict:
    """The settings as given (flat keys, lists for tuples): for configs that must fail later."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}

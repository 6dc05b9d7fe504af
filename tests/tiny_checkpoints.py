"""A tiny checkpoint series trained for real by examples/train_code_mlm.py (a few steps of a
2-layer, 32-wide RoBERTa MLM on a few standard-library files), built once per test session.
Import the fixtures into a test module."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from functools import lru_cache
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_code_mlm.py"
TINY = dict(
    max_files=12,
    vocab_size=400,
    layers=2,
    hidden=32,
    heads=2,
    intermediate=64,
    max_length=256,
    batch_size=4,
    max_steps=3,
    save_steps=(1, 2, 3),
    seed=0,
)


@lru_cache(maxsize=1)
def example():
    """The training example as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("train_code_mlm", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def train_tiny(out: Path, **overrides) -> Path:
    """Run the example's `train` in this process with the tiny settings (and `overrides`)."""
    mod = example()
    with pytest.MonkeyPatch.context() as patch:
        # tests/ is on sys.path, so tests/datasets/ looks like the `datasets` package to Trainer.
        patch.setattr("transformers.trainer.is_datasets_available", lambda: False)
        return mod.train(mod.TrainSettings(**{**TINY, **overrides}), out)


@pytest.fixture(scope="session")
def tiny_training(tmp_path_factory) -> Path:
    """The training output folder: checkpoint-1, -2, -3, tokenizer/, train_settings.json. Read
    only: copy it (`series_copy`) to change it."""
    return train_tiny(tmp_path_factory.mktemp("tiny-mlm") / "out")


def series_copy(training: Path, dest: Path, steps=(1, 2, 3)) -> Path:
    """A copy of the tiny series holding only the checkpoints at `steps`."""
    dest.mkdir(parents=True)
    for step in steps:
        shutil.copytree(training / f"checkpoint-{step}", dest / f"checkpoint-{step}")
    return dest

"""One config describes one experiment (a run): what to probe, on what, and how.

It is written to `RUN_DIR/config.json` and read back by `codeprobe report`, so a run folder says
how it was made.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "default"  # the packaged all-MiniLM-L6-v2 (a text model, not a code model)

# The paper's training budget (AST-Probe, arXiv:2206.11719): at most 20 epochs. Pass it to
# `RunConfig(**PAPER_TRAINING)` to reproduce the paper's settings; the default trains to convergence.
PAPER_TRAINING: dict[str, Any] = {"max_epochs": 20, "patience": 5, "min_improvement": 0.0, "lr": 1e-3,
                                  "probe_batch_size": 32,
                                  "orthogonality": 5.0, "lr_factor": 0.1}


@dataclass(frozen=True)
class RunConfig:
    """A probing run over every (model, language, dataset) combination.

    Attributes:
        models: model names: "default" (the packaged text model), a local directory, or a
            Hugging Face id present in the local cache.
        languages: languages to probe (each dataset is read in each language it has).
        datasets: dataset specs the loaders accept: "stdlib", a .jsonl/.json/.txt file, a
            directory of source files.
        n_snippets: snippets sampled per (language, dataset), before the train/valid/test split.
        seed: seeds sampling, splitting, baselines and probe initialisation.
        shard_size: snippets per shard of CAT work (the unit of caching and resuming).
        cat: run CAT-probing; cat_types: "paper" | "topk" | "all" | "auto" (paper where the
            spec has a list for the language, else all); cat_distance: "uast" | "ast";
            quantile: the CAT quantile; cat_max_subwords: model input limit (the paper's 256);
            cat_per_head: also score every attention head (for the report's layer x head map;
            not with cat_types "topk").
        astprobe: run AST-Probe; rank: probe rank of the layer sweep; ranks: rank sweep at the
            layer with the best validation F1 (empty: none); layers: hidden-state indices
            (empty: all); random_baseline: also probe the same architecture with random weights.
        max_epochs / patience: the probes' training budget. By default a probe trains until its
            validation loss stops improving (patience epochs without a new best), under a
            maximum that is rarely reached; the paper's budget is max_epochs=20 (see
            `PAPER_TRAINING`). min_improvement: the relative margin by which a validation loss
            must beat the best to count as an improvement (1e-4; 0 in PAPER_TRAINING, the spec's
            strict improvement). lr, probe_batch_size, orthogonality, lr_factor: the spec's
            optimisation settings (Adam 1e-3, 32 snippets, 5, ReduceLROnPlateau factor 0.1);
            probe_init: "uniform" (the spec's) or "orthogonal" (see `TrainConfig.init`).
        Paper-faithful switches (docs/paper-switches.md): cat_model_input "source" (default) or
            "code_tokens" (the code tokens joined by spaces, as CAT-probing's code fed them);
            cat_head_pooling "mean" (default) or "max" over a layer's heads; remove_docstrings
            and drop_line_continuations (AST-Probe's original preprocessing); astprobe_model_input
            as cat_model_input, for AST-Probe.
        probe_seeds: train every probe with this many seeds (seed, seed + 1, ...); the report
            gives the mean over seeds and their spread.
        batch_size: snippets per forward pass; device: "cpu", "cuda", or None (automatic);
            dtype: the model's weights, "float32" (default), "bfloat16" or "float16" (on a GPU:
            half the memory and the time; AST-Probe's vector cache is float16 either way).
        explorer_snippets: test snippets sampled for the report's snippet explorer (0: none).
    """

    models: tuple[str, ...] = (DEFAULT_MODEL,)
    languages: tuple[str, ...] = ("python",)
    datasets: tuple[str, ...] = ("stdlib",)
    n_snippets: int = 1400
    seed: int = 0
    shard_size: int = 250
    cat: bool = True
    cat_types: str = "auto"
    cat_distance: str = "uast"
    quantile: float = 0.75
    cat_max_subwords: int = 256
    cat_model_input: str = "source"
    cat_head_pooling: str = "mean"
    cat_per_head: bool = True
    astprobe: bool = True
    rank: int = 128
    ranks: tuple[int, ...] = (8, 32, 128)
    layers: tuple[int, ...] = ()
    max_epochs: int = 200
    patience: int = 5
    min_improvement: float = 1e-4
    lr: float = 1e-3
    probe_batch_size: int = 32
    orthogonality: float = 5.0
    lr_factor: float = 0.1
    probe_init: str = "uniform"
    probe_seeds: int = 1
    random_baseline: bool = True
    remove_docstrings: bool = False
    drop_line_continuations: bool = False
    astprobe_model_input: str = "source"
    batch_size: int = 16
    device: str | None = None
    dtype: str = "float32"
    explorer_snippets: int = 20
    extra: dict[str, Any] = field(default_factory=dict)

    def train_settings(self) -> dict[str, Any]:
        """The probes' `TrainConfig` fields, as recorded with every result."""
        return {"lr": self.lr, "batch_size": self.probe_batch_size, "max_epochs": self.max_epochs,
                "patience": self.patience, "min_improvement": self.min_improvement,
                "orthogonality": self.orthogonality, "lr_factor": self.lr_factor, "init": self.probe_init,
                "device": self.device or "cpu"}

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build from a JSON-like dict; lists become tuples; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown run config keys: {', '.join(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    @classmethod
    def read(cls, path: str | Path) -> RunConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def slug(text: str) -> str:
    """A file-name-safe key for a model or dataset spec ("stdlib", "cosqa-dev", ...)."""
    name = Path(text).name if ("/" in text or "\\" in text) else text
    name = re.sub(r"\.(jsonl\.gz|jsonl|json|txt|tsv)$", "", name)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "x"

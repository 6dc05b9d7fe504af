"""Model layer: load a code (or text) transformer offline and extract, per layer, token attention
and per-hidden-state token hidden states, aligned to code tokens."""

from codeprobe.model.extraction import Extractor
from codeprobe.model.loading import LoadedModel, ModelInfo, load_model, shared_model
from codeprobe.model.model_io import ModelInput, SnippetResult
from codeprobe.model.random_weights import RANDOM_LABEL, random_weights
from codeprobe.model.source import DEFAULT_MODEL_ID, default_model_dir, model_fingerprint

__all__ = [
    "DEFAULT_MODEL_ID",
    "RANDOM_LABEL",
    "Extractor",
    "LoadedModel",
    "ModelInfo",
    "ModelInput",
    "SnippetResult",
    "default_model_dir",
    "load_model",
    "model_fingerprint",
    "random_weights",
    "shared_model",
]

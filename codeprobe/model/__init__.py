"""Model layer: load a code (or text) transformer offline and extract, per layer, token attention
and token vectors aligned to code tokens."""

from codeprobe.model.extraction import Extractor, Snippet, SnippetResult
from codeprobe.model.loading import (
    DEFAULT_MODEL,
    LoadedModel,
    ModelInfo,
    default_model_dir,
    load_model,
    model_fingerprint,
    shared_model,
)

__all__ = [
    "DEFAULT_MODEL",
    "Extractor",
    "LoadedModel",
    "ModelInfo",
    "Snippet",
    "SnippetResult",
    "default_model_dir",
    "load_model",
    "model_fingerprint",
    "shared_model",
]

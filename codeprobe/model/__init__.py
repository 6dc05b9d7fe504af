"""Model layer: load a code (or text) transformer offline and extract, per layer, token attention
and token vectors aligned to code tokens."""

from codeprobe.model.extraction import Extractor
from codeprobe.model.loading import LoadedModel, ModelInfo, load_model, shared_model
from codeprobe.model.snippet import Snippet, SnippetResult
from codeprobe.model.source import DEFAULT_MODEL, default_model_dir, model_fingerprint

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

"""Whether a model is a code model: the packaged text model is told by its weights' checksum,
others by name (known code-model name words), and otherwise it is unknown."""

from __future__ import annotations

import json
import re
from pathlib import Path

from codeprobe.model.source import is_packaged_weights

DEFAULT_NOTE = (
    "text model: a sentence encoder (uncased WordPiece) whose training data included "
    "CodeSearchNet pairs, not a code model"
)

# Name words of known code models, matched against the words of a model's name (split at every
# character that is not a letter or digit): a word equal to one of _CODE_WORDS or starting with
# one of _CODE_PREFIXES. Whole words only, so "t5-encoder" or "my-decoder" are not code models.
_CODE_WORDS = frozenset({"code", "coder"})  # stable-code-3b, deepseek-coder, Qwen2.5-Coder
_CODE_PREFIXES = (
    "codebert",  # CodeBERT, CodeBERTa
    "graphcodebert",
    "unixcoder",
    "codet5",  # CodeT5, CodeT5+ (codet5p)
    "codegen",
    "codegpt",
    "codellama",
    "codegemma",
    "codeqwen",
    "codesage",
    "codestral",
    "codeparrot",
    "starcoder",
    "santacoder",
    "wizardcoder",
    "polycoder",
    "incoder",
    "transcoder",
    "plbart",
)


def is_code_model(name: str, source: str, path: Path, files: list[Path]) -> tuple[bool | None, str]:
    """(is_code_model, note) of a model: judged by the weights' checksum (the packaged text
    model) or by name: the id, the directory's own name, and the hub name recorded in
    config.json (`_name_or_path`)."""
    if is_packaged_weights(files):
        return False, DEFAULT_NOTE
    try:
        recorded = json.loads((path / "config.json").read_text(encoding="utf-8")).get("_name_or_path", "")
    except (OSError, ValueError):
        recorded = ""
    label = path.name if source == "directory" else name
    if is_code_model_name(label) or is_code_model_name(recorded):
        return True, "code model (judged by its name)"
    return None, "unknown whether this is a code model (its name does not say)"


def is_code_model_name(name: str) -> bool:
    """Whether a model name or path names a known code model: one of its words (split at every
    character that is not a letter or digit, case ignored) is "code" or "coder", or starts with
    a known code-model name (codebert, codet5, unixcoder, starcoder, ...). Names that merely
    contain "code" inside a word ("t5-encoder", "my-decoder") do not count."""
    words = re.split(r"[^a-z0-9]+", name.lower())
    return any(w in _CODE_WORDS or w.startswith(_CODE_PREFIXES) for w in words)

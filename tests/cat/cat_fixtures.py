"""Shared by the CAT-probing tests: real snippets from ../shared and tiny random-weight models
with real tokenizers (fixtures; test modules import them by name).

Not a conftest.py: pytest imports every conftest.py under the module name `conftest`, so a
second one would shadow tests/conftest.py for `from conftest import ...`.
"""

from __future__ import annotations

import json
import shutil
from functools import lru_cache
from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[3] / "shared"


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is missing: ../shared must sit beside the repository")
    return path


@lru_cache(maxsize=None)
def python_snippets(limit: int) -> tuple[tuple[str, str], ...]:
    """(id, code) of the first `limit` real Python functions of cosqa-dev.json."""
    rows = json.loads(shared_path("data", "cosqa-dev.json").read_text(encoding="utf-8"))
    return tuple((row["idx"], row["code"]) for row in rows[:limit])


@lru_cache(maxsize=None)
def java_snippets(limit: int) -> tuple[tuple[str, str], ...]:
    """(id, code) of the first `limit` Java methods of csn-java-test-tokens.txt (space-joined
    tokens, layout lost)."""
    out = []
    with shared_path("data", "csn-java-test-tokens.txt").open(encoding="utf-8") as f:
        for line in f:
            ident, _, code = line.rstrip("\n").partition("\t")
            out.append((ident, code))
            if len(out) >= limit:
                break
    return tuple(out)


def _save(model_class, config, out, tokenizer_dir, files):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = model_class(config)
    model.save_pretrained(out, safe_serialization=True)
    for name in files:
        shutil.copy(tokenizer_dir / name, out / name)
    return out


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory):
    """A 3-layer, 4-head, 32-wide RobertaModel with CodeBERT's real byte-level BPE tokenizer.
    A large init range makes attention peaked rather than uniform, like a trained model's."""
    import transformers

    src = shared_path("models", "codebert-base-tokenizer")
    config = transformers.RobertaConfig.from_pretrained(src)
    config.update({"num_hidden_layers": 3, "hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64,
                   "initializer_range": 0.3, "_name_or_path": "tiny-roberta"})
    files = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")
    return _save(transformers.RobertaModel, config, tmp_path_factory.mktemp("tiny-roberta"), src, files)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    """A 2-layer, 2-head BertModel with the packaged MiniLM's WordPiece tokenizer."""
    import transformers

    from codeprobe.model import default_model_dir

    src = default_model_dir()
    config = transformers.BertConfig.from_pretrained(src)
    config.update({"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64,
                   "initializer_range": 0.3, "_name_or_path": "tiny-bert"})
    files = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
    return _save(transformers.BertModel, config, tmp_path_factory.mktemp("tiny-bert"), src, files)


@pytest.fixture(scope="session")
def tiny_roberta(tiny_roberta_dir):
    from codeprobe.model import load_model

    return load_model(str(tiny_roberta_dir), device="cpu")


@pytest.fixture(scope="session")
def tiny_bert(tiny_bert_dir):
    from codeprobe.model import load_model

    return load_model(str(tiny_bert_dir), device="cpu")

"""Fixtures for AST-Probe tests (import them into a test module): a tiny random-weight BERT
with the packaged model's tokenizer."""

from __future__ import annotations

import shutil

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A 2-layer, 32-wide BertModel with random weights (seeded), saved like a real model."""
    import transformers

    from codeprobe.model import default_model_dir

    src = default_model_dir()
    out = tmp_path_factory.mktemp("tiny-bert")
    config = transformers.BertConfig.from_pretrained(src)
    config.update(
        {
            "num_hidden_layers": 2,
            "hidden_size": 32,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "_name_or_path": "tiny-bert",
        }
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.BertModel(config)
    model.save_pretrained(out, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(src / name, out / name)
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from codeprobe.model import load_model

    return load_model(str(tiny_model_dir), device="cpu")


@pytest.fixture
def one_thread():
    """Run a test on one torch thread: these tensors are tiny, and OpenMP's spinning threads
    only slow them down when other processes share the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

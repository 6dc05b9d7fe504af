"""Tiny random-weight models with real tokenizers for the CAT-probing tests, each built once per
test process into a temporary directory removed at exit. (Not a conftest.py: a second conftest
module would shadow the root one that tests import from.)

A large init range makes attention peaked rather than uniform, like a trained model's, so that
the scores are not decided by float noise between near-equal cells.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

import torch
from shared_data import shared_path

_ROOT = Path(tempfile.mkdtemp(prefix="codeprobe-cat-models-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)


def _save(model_class, config, name: str, tokenizer_dir: Path, files: tuple[str, ...]) -> Path:
    from codeprobe.model.load_output import quiet_loading

    out = _ROOT / name
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = model_class(config)
    with quiet_loading():
        model.save_pretrained(out)
    for file in files:
        shutil.copy(tokenizer_dir / file, out / file)
    return out


@cache
def tiny_roberta_dir() -> Path:
    """3 layers, 4 heads, 32 wide RobertaModel with CodeBERT's real byte-level BPE tokenizer."""
    import transformers

    src = shared_path("models", "codebert-base-tokenizer")
    config = transformers.RobertaConfig.from_pretrained(src)
    config.update(
        {
            "num_hidden_layers": 3,
            "hidden_size": 32,
            "num_attention_heads": 4,
            "intermediate_size": 64,
            "initializer_range": 0.3,
            "_name_or_path": "tiny-roberta",
        }
    )
    files = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")
    return _save(transformers.RobertaModel, config, "tiny-roberta", src, files)


@cache
def tiny_bert_dir() -> Path:
    """2 layers, 2 heads BertModel with the packaged MiniLM's uncased WordPiece tokenizer."""
    import transformers

    from codeprobe.model import default_model_dir

    src = default_model_dir()
    config = transformers.BertConfig.from_pretrained(src)
    config.update(
        {
            "num_hidden_layers": 2,
            "hidden_size": 32,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "initializer_range": 0.3,
            "_name_or_path": "tiny-bert",
        }
    )
    files = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
    return _save(transformers.BertModel, config, "tiny-bert", src, files)


@cache
def tiny_model(name: str):
    """The LoadedModel of "roberta" or "bert" on CPU."""
    from codeprobe.model import load_model

    return load_model(str({"roberta": tiny_roberta_dir, "bert": tiny_bert_dir}[name]()), device="cpu")

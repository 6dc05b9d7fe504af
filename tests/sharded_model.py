"""A tiny random-weight model saved in shards (model-0000N-of-0000M.safetensors and its index),
with the packaged model's tokenizer: what a big local model looks like on disk."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

TOKENIZER = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def sharded_bert(folder: Path, seed: int = 0) -> Path:
    """A 2-layer, 32-wide random BertModel (seeded) saved in 1 MB shards into `folder` (again
    into the same folder: other weights under the same file names)."""
    import transformers

    from codeprobe.model import default_model_dir
    from codeprobe.model.load_output import quiet_loading

    src = default_model_dir()
    config = transformers.BertConfig.from_pretrained(src)
    config.update(
        {
            "num_hidden_layers": 2,
            "hidden_size": 32,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "_name_or_path": "tiny-sharded-bert",
        }
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.BertModel(config)
    with quiet_loading():
        model.save_pretrained(folder, max_shard_size="1MB")
    for name in TOKENIZER:
        if not (folder / name).exists():
            shutil.copy(src / name, folder / name)
    return folder

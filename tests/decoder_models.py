"""Tiny random-weight decoders of six families, architecture-exact (each family's own
transformers config and causal-LM class, as its checkpoints are published), with a real-style
fast tokenizer: byte-level BPE trained here on a few standard-library files, with the family's
special tokens. Llama (3) and Gemma put BOS before every input; GPT-2, Starcoder2, Qwen2 and
GPT-NeoX add no special token, as their released tokenizers do.

Import the session fixture `decoder_models` into a test module and ask it for a family's
folder (safetensors weights, config.json, tokenizer.json), built on first use. (Not a
conftest.py: a second conftest module would shadow the root one that tests import from.)
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

# Layers, width and heads shared by every family; a large init range makes attention peaked
# rather than uniform, like a trained model's (see tests/cat/cat_models.py).
N_LAYERS, HIDDEN, HEADS, POSITIONS, VOCAB = 2, 32, 4, 256, 800
INIT = 0.3
STDLIB_FILES = ("textwrap.py", "heapq.py", "bisect.py", "colorsys.py", "fnmatch.py")


@dataclass(frozen=True)
class Family:
    """A decoder family: its config and causal-LM classes (transformers names), the config's
    family-specific settings, and its tokenizer's special tokens.

    Attributes:
        config_class, model_class: transformers class names.
        settings: config fields beyond the shared sizes (e.g. grouped-query heads, Gemma's
            head_dim, GPT-NeoX's partial rotary).
        bos, eos, pad: special tokens (None: the tokenizer has none; without pad, padding uses eos).
        adds_bos: whether the tokenizer puts `bos` before every input.
    """

    config_class: str
    model_class: str
    settings: dict[str, Any]
    bos: str | None
    eos: str
    pad: str | None
    adds_bos: bool


_SIZES = {
    "hidden_size": HIDDEN,
    "intermediate_size": 2 * HIDDEN,
    "num_hidden_layers": N_LAYERS,
    "num_attention_heads": HEADS,
    "max_position_embeddings": POSITIONS,
}

FAMILIES: dict[str, Family] = {
    # Llama 3 / CodeLlama: grouped-query attention, BOS first.
    "llama": Family(
        "LlamaConfig",
        "LlamaForCausalLM",
        {**_SIZES, "num_key_value_heads": 2},
        "<|begin_of_text|>",
        "<|end_of_text|>",
        None,
        True,
    ),
    # Qwen2 / Qwen2.5-Coder: biased q/k/v, tied embeddings, pad = <|endoftext|>, no BOS token.
    "qwen2": Family(
        "Qwen2Config",
        "Qwen2ForCausalLM",
        {**_SIZES, "num_key_value_heads": 2, "tie_word_embeddings": True},
        None,
        "<|endoftext|>",
        "<|endoftext|>",
        False,
    ),
    # Starcoder2: LayerNorm and biases, a sliding window longer than any input here.
    "starcoder2": Family(
        "Starcoder2Config",
        "Starcoder2ForCausalLM",
        {**_SIZES, "num_key_value_heads": 2, "sliding_window": 4 * POSITIONS},
        "<|endoftext|>",
        "<|endoftext|>",
        None,
        False,
    ),
    # GPT-NeoX / Pythia: fused q/k/v, rotary on a quarter of each head, parallel residual.
    "gpt_neox": Family(
        "GPTNeoXConfig",
        "GPTNeoXForCausalLM",
        {**_SIZES, "rotary_pct": 0.25, "use_parallel_residual": True},
        "<|endoftext|>",
        "<|endoftext|>",
        None,
        False,
    ),
    # Gemma: one key-value head, head_dim apart from hidden / heads, embeddings scaled by
    # sqrt(hidden) and tied to the output layer, BOS first.
    "gemma": Family(
        "GemmaConfig",
        "GemmaForCausalLM",
        {**_SIZES, "num_key_value_heads": 1, "head_dim": 16},
        "<bos>",
        "<eos>",
        "<pad>",
        True,
    ),
    # GPT-2: learned absolute positions, no special token added.
    "gpt2": Family(
        "GPT2Config",
        "GPT2LMHeadModel",
        {"n_embd": HIDDEN, "n_layer": N_LAYERS, "n_head": HEADS, "n_positions": POSITIONS},
        "<|endoftext|>",
        "<|endoftext|>",
        None,
        False,
    ),
}


def training_texts() -> list[str]:
    """A few files of the running interpreter's standard library: real Python to train the
    tokenizers on."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return [(root / name).read_text(encoding="utf-8") for name in STDLIB_FILES]


def tokenizer(family: Family):
    """A byte-level BPE fast tokenizer (GPT-2's scheme, which Llama 3, Qwen2, Starcoder2 and
    GPT-NeoX share) trained on `training_texts`, with `family`'s special tokens and BOS rule."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    specials = [t for t in dict.fromkeys((family.bos, family.eos, family.pad)) if t]
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(training_texts(), trainer)
    byte_level = processors.ByteLevel(trim_offsets=False)  # as the released tokenizer.json files
    if family.adds_bos:
        bos_id = tk.token_to_id(family.bos)
        bos = processors.TemplateProcessing(single=f"{family.bos} $A", special_tokens=[(family.bos, bos_id)])
        tk.post_processor = processors.Sequence([byte_level, bos])
    else:
        tk.post_processor = byte_level
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token=family.bos, eos_token=family.eos, pad_token=family.pad
    )


def build(name: str, folder: Path, **settings: Any) -> Path:
    """Save family `name`'s tiny causal LM (seeded random weights, safetensors) and its
    tokenizer to `folder`; `settings` change config fields (e.g. a sliding window)."""
    import transformers

    from codeprobe.model.load_output import quiet_loading

    family = FAMILIES[name]
    tok = tokenizer(family)
    ids = {
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    config = getattr(transformers, family.config_class)(
        vocab_size=len(tok), initializer_range=INIT, **{**family.settings, **ids, **settings}
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = getattr(transformers, family.model_class)(config)
    with quiet_loading():
        model.save_pretrained(folder)
    tok.save_pretrained(folder)
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    return folder


class DecoderModels:
    """The tiny decoder folders of one test session, built on first use under `root`."""

    def __init__(self, root: Path):
        self.root = root
        self._built: dict[str, Path] = {}

    def dir(self, name: str) -> Path:
        """Folder of family `name` (a key of FAMILIES)."""
        if name not in self._built:
            self._built[name] = build(name, self.root / name)
        return self._built[name]


@pytest.fixture(scope="session")
def decoder_models(tmp_path_factory) -> DecoderModels:
    return DecoderModels(tmp_path_factory.mktemp("decoders"))

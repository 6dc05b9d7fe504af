"""Tiny random-weight models with the real CodeBERT / CodeT5 tokenizers and configs (no weights
exist offline), plus decoder-only models whose tokenizers have no pad token.

Each is built once per test process (cached) into a temporary directory removed at exit. (Not a
conftest.py: a second conftest module would shadow the root one that tests import from.)
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

import torch
from shared_data import cosqa_functions, shared_path

_ROOT = Path(tempfile.mkdtemp(prefix="codeprobe-tiny-models-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)

TINY = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128}


def save(model: torch.nn.Module, tokenizer, folder: Path) -> Path:
    from codeprobe.model.load_output import quiet_loading

    with quiet_loading():
        model.save_pretrained(folder)  # transformers 5 writes safetensors
    tokenizer.save_pretrained(folder)
    assert (folder / "model.safetensors").is_file()
    return folder


def roberta_like(folder: Path, **overrides) -> Path:
    """CodeBERT's real config and tokenizer, shrunk (RobertaModel, random weights)."""
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    src = shared_path("models", "codebert-base-tokenizer")
    config = RobertaConfig.from_pretrained(src, **{**TINY, **overrides})
    torch.manual_seed(0)
    return save(RobertaModel(config), AutoTokenizer.from_pretrained(src), folder)


def codebert_dir(folder: Path) -> Path:
    return roberta_like(folder)


def codet5_dir(folder: Path) -> Path:
    """CodeT5's real config and tokenizer, shrunk; saved as the full encoder-decoder."""
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    src = shared_path("models", "codet5-base-tokenizer")
    config = T5Config.from_pretrained(
        src, num_layers=2, num_decoder_layers=1, d_model=64, d_kv=16, num_heads=4, d_ff=128
    )
    torch.manual_seed(0)
    return save(T5ForConditionalGeneration(config), AutoTokenizer.from_pretrained(src), folder)


def codet5_encoder_dir(folder: Path) -> Path:
    """CodeT5's real config and tokenizer, shrunk, saved as the encoder alone
    (`architectures: ["T5EncoderModel"]`), the form AST-Probe used for CodeT5."""
    from transformers import AutoTokenizer, T5Config, T5EncoderModel

    src = shared_path("models", "codet5-base-tokenizer")
    config = T5Config.from_pretrained(src, num_layers=2, d_model=64, d_kv=16, num_heads=4, d_ff=128)
    torch.manual_seed(0)
    return save(T5EncoderModel(config), AutoTokenizer.from_pretrained(src), folder)


def gpt2_dir(folder: Path) -> Path:
    """GPT-2 (causal LM head checkpoint) with a byte-level BPE tokenizer lacking a pad token."""
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    src = shared_path("models", "codebert-base-tokenizer")
    tok = GPT2Tokenizer(
        vocab=str(src / "vocab.json"),
        merges=str(src / "merges.txt"),
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
    )
    assert tok.pad_token_id is None
    config = GPT2Config(
        vocab_size=len(tok),
        n_positions=256,
        n_embd=64,
        n_layer=2,
        n_head=4,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    return save(GPT2LMHeadModel(config), tok, folder)


def llama_dir(folder: Path) -> Path:
    """Llama (grouped-query attention, BOS prefix) with a SentencePiece-style (Metaspace BPE)
    tokenizer trained on real code; no pad token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tk.train_from_iterator([code for _, code in cosqa_functions()], trainer)
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    assert tok.pad_token_id is None
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=None,
    )
    torch.manual_seed(0)
    return save(LlamaForCausalLM(config), tok, folder)


def unixcoder_dir(folder: Path) -> Path:
    """UniXcoder's shape: RoBERTa with 1,026 positions and an <encoder-only> mode token."""
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    src = shared_path("models", "codebert-base-tokenizer")
    tok = AutoTokenizer.from_pretrained(src)
    tok.add_tokens(["<encoder-only>"], special_tokens=True)
    config = RobertaConfig.from_pretrained(src, **TINY, max_position_embeddings=1026, vocab_size=len(tok))
    torch.manual_seed(0)
    return save(RobertaModel(config), tok, folder)


BUILDERS = {
    "codebert": codebert_dir,
    "codet5": codet5_dir,
    "codet5-encoder": codet5_encoder_dir,
    "gpt2": gpt2_dir,
    "llama": llama_dir,
    "unixcoder": unixcoder_dir,
}


@cache
def tiny_model(kind: str) -> Path:
    """Directory of the tiny model `kind` (one of BUILDERS), built on first use."""
    folder = _ROOT / kind
    folder.mkdir()
    return BUILDERS[kind](folder)


@cache
def tiny_loaded(kind: str):
    """The tiny model loaded through codeprobe's loader (cached: loading is read-only)."""
    from codeprobe.model import load_model

    return load_model(str(tiny_model(kind)), device="cpu")

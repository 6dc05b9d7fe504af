"""Tiny random-weight models with real tokenizers for the CAT-probing tests (encoders, and
decoders with and without a BOS token), each built once per test process into a temporary
directory removed at exit. (Not a conftest.py: a second conftest
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


def _save_with_tokenizer(model_class, config, name: str, tokenizer) -> Path:
    from codeprobe.model.load_output import quiet_loading

    out = _ROOT / name
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = model_class(config)
    with quiet_loading():
        model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@cache
def tiny_gpt2_dir(initializer_range: float = 0.3) -> Path:
    """2 layers, 4 heads, 32 wide GPT2Model (causal) with CodeBERT's byte-level BPE as a GPT-2
    tokenizer: it adds no special token, so the code's first subword is input position 0.
    `initializer_range` 0.02 (the usual) gives near-uniform attention, an untrained model's."""
    import transformers

    src = shared_path("models", "codebert-base-tokenizer")
    tok = transformers.GPT2Tokenizer(
        vocab=str(src / "vocab.json"),
        merges=str(src / "merges.txt"),
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
    )
    assert tok("x = 1")["input_ids"] == tok("x = 1", add_special_tokens=False)["input_ids"]
    config = transformers.GPT2Config(
        vocab_size=len(tok),
        n_positions=256,
        n_embd=32,
        n_layer=2,
        n_head=4,
        initializer_range=initializer_range,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return _save_with_tokenizer(transformers.GPT2Model, config, f"tiny-gpt2-{initializer_range}", tok)


@cache
def tiny_llama_dir(initializer_range: float = 0.3) -> Path:
    """2 layers, 4 heads (2 key-value heads), 32 wide LlamaModel with a SentencePiece-style
    (Metaspace BPE) tokenizer trained on real code that puts BOS before every input, as Llama's
    and CodeLlama's do: an attention sink that is no code token. `initializer_range` as for
    `tiny_gpt2_dir`."""
    import transformers
    from shared_data import cosqa_functions
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tk.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tk.train_from_iterator([code for _, code in cosqa_functions()], trainer)
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    config = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        initializer_range=initializer_range,
        bos_token_id=1,
        eos_token_id=2,
    )
    return _save_with_tokenizer(transformers.LlamaModel, config, f"tiny-llama-{initializer_range}", tok)


BUILDERS = {"roberta": tiny_roberta_dir, "bert": tiny_bert_dir, "gpt2": tiny_gpt2_dir, "llama": tiny_llama_dir}


@cache
def tiny_model(name: str):
    """The LoadedModel of "roberta", "bert" (encoders), "gpt2" or "llama" (decoders) on CPU."""
    from codeprobe.model import load_model

    return load_model(str(BUILDERS[name]()), device="cpu")

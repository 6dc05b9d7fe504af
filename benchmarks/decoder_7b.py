"""A Qwen2.5-Coder-7B-shaped decoder with **random weights**, for the GPU benchmark
(`bench_gpu.py`): Qwen2's own config and causal-LM class, built directly on the target device
in the target dtype and saved as safetensors with a real-style fast tokenizer, so that codeprobe
loads it as it loads a downloaded checkpoint (`codeprobe.model.load_model`). No code model's
weights exist offline: figures from it are speed and memory only, never Qwen2.5-Coder's results.

The shape (`QWEN25_CODER_7B`): hidden 3,584, 28 layers, 28 query heads and 4 key-value heads
(grouped-query attention, head dimension 128), MLP 18,944, vocabulary 152,064, RoPE theta 1e6,
RMSNorm eps 1e-6, biased q/k/v, untied embeddings, no sliding window. Sources: the
Qwen2.5-7B(-Instruct) config.json as quoted in public repositories (every number above), and the
Qwen2.5-Coder-7B model card (Qwen/Qwen2.5-Coder-7B on Hugging Face, as mirrored in
ZHUI/paddlenlp_model_readme, Qwen/Qwen2.5-Coder-7B/index.md: 28 layers, 28 query and 4 key-value
heads, 7.61 B parameters of which 6.53 B are not embeddings). The count checks the shape: per
layer 2 x 3584^2 + 2 x 512 x 3584 (q, o; k, v) + 3 x 3584 x 18944 (MLP) = 233.0 M, x 28 = 6.53 B;
plus 2 x 152,064 x 3,584 = 1.09 B for the embeddings and the untied LM head: 7.615 B in all
(the card's 7.61 B).

The tokenizer: byte-level BPE with Qwen2's pre-tokenizer (its split pattern, then bytes to
characters; NFC normalisation), `<|endoftext|>` as end and padding token, no token added to an
input, as the released tokenizer.json does; trained here on `TRAIN_FILES` of the standard
library (at most `TRAINED_VOCAB` tokens; they yield about 5,800, where Qwen's own has 151,643
regular tokens, so inputs here take somewhat more subwords than they would with it). The
model keeps its 152,064 embedding rows, as Qwen pads its own beyond the tokenizer's.

`tiny=True` divides every width by `TINY_DIVISOR` (hidden 112, 28 heads of 4 dimensions, 4
key-value heads, MLP 592): the same architecture small enough to smoke-test the benchmark on a
CPU; `n_layers` overrides the depth.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import torch

QWEN25_CODER_7B = {
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "vocab_size": 152064,
    "max_position_embeddings": 32768,
    "rope_theta": 1_000_000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
    "use_sliding_window": False,
    "sliding_window": None,
}
TINY_DIVISOR = 32
TRAINED_VOCAB = 8192
TRAIN_FILES = ("textwrap.py", "heapq.py", "bisect.py", "colorsys.py", "fnmatch.py", "shlex.py", "argparse.py")
EOS = "<|endoftext|>"
# Qwen2's tokenizer.json split pattern (GPT-4's, with single digits): words with one leading
# non-letter, digits one by one, punctuation runs with their newlines, whitespace runs.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def tokenizer():
    """Qwen2-style byte-level BPE fast tokenizer trained on `TRAIN_FILES` of the running
    interpreter's standard library (see the module docstring)."""
    import transformers
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    root = Path(sysconfig.get_paths()["stdlib"])
    tk = Tokenizer(models.BPE())
    tk.normalizer = normalizers.NFC()
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TRAINED_VOCAB,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator([(root / name).read_text(encoding="utf-8") for name in TRAIN_FILES], trainer)
    tk.post_processor = processors.ByteLevel(trim_offsets=False)  # as the released tokenizer.json
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tk, eos_token=EOS, pad_token=EOS)


def config(tok, n_layers: int | None = None, tiny: bool = False):
    """Qwen2Config of `QWEN25_CODER_7B` with `tok`'s special-token ids; `n_layers` layers
    instead of 28, and every width / `TINY_DIVISOR` with `tiny`."""
    import transformers

    shape = dict(QWEN25_CODER_7B)
    if tiny:
        for name in ("hidden_size", "intermediate_size"):
            shape[name] //= TINY_DIVISOR
    if n_layers is not None:
        shape["num_hidden_layers"] = n_layers
    ids = {"bos_token_id": tok.eos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    return transformers.Qwen2Config(architectures=["Qwen2ForCausalLM"], **shape, **ids)


def build(
    folder: Path,
    *,
    seed: int,
    device: str,
    dtype: torch.dtype,
    n_layers: int | None = None,
    tiny: bool = False,
) -> Path:
    """Save the seeded random-weight Qwen2ForCausalLM of `config(...)` and its tokenizer to
    `folder` (safetensors, sharded as transformers shards a 15 GB checkpoint).

    The weights are created on `device` in `dtype` (`torch.device` as the default device, the
    model's init under `dtype`), so no float32 copy on the CPU is ever made (28 GB for the full
    shape); the model is freed before this returns.

    Returns:
        `folder`.
    """
    import transformers

    from codeprobe.model.load_output import quiet_loading

    tok = tokenizer()
    torch.manual_seed(seed)  # seeds the CUDA generators too
    with torch.device(device):
        model = transformers.AutoModelForCausalLM.from_config(config(tok, n_layers, tiny), dtype=dtype)
    with quiet_loading():
        model.save_pretrained(folder)
    tok.save_pretrained(folder)
    del model
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    return folder

"""What the loader makes of a checkpoint's config and tokenizer: the class to load it with and
its kind (encoder, the encoder of an encoder-decoder, or decoder), the most input positions it
takes, and the special tokens that frame a snippet (the input template)."""

from __future__ import annotations

from typing import Any

import torch

from codeprobe.errors import ModelLoadError

# Encoder classes for encoder-decoder families: only the encoder is probed (AST-Probe's CodeT5).
# A checkpoint saved as the encoder alone (`architectures: ["T5EncoderModel"]`) records
# `is_encoder_decoder: false`, so the family is told by model_type, not by that flag.
ENCODER_ONLY_CLASSES = {
    "t5": "T5EncoderModel",
    "mt5": "MT5EncoderModel",
    "umt5": "UMT5EncoderModel",
    "longt5": "LongT5EncoderModel",
}
_UNIXCODER_MODE = "<encoder-only>"


def model_class(config: Any) -> tuple[Any, str]:
    """(class with from_pretrained, kind) for a config."""
    import transformers
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = config.model_type
    if model_type in ENCODER_ONLY_CLASSES:
        return getattr(transformers, ENCODER_ONLY_CLASSES[model_type]), "encoder (of encoder-decoder)"
    if getattr(config, "is_encoder_decoder", False):
        raise ModelLoadError(
            f"encoder-decoder model type {model_type!r} is not supported; supported: "
            f"{sorted(ENCODER_ONLY_CLASSES)} (encoder only)"
        )
    causal = model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    masked = model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    return transformers.AutoModel, "decoder" if causal and not masked else "encoder"


def attention_window(config: Any) -> int | None:
    """Most keys a query attends to (itself included) in the model's sliding-window layers
    (Starcoder2, Mistral, Gemma 2's every other layer, Qwen2's upper layers when
    `use_sliding_window`), or None where every layer attends to all earlier keys."""
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None)
    if not window or (layer_types is not None and "sliding_attention" not in layer_types):
        return None  # e.g. Qwen2 with a window set but every layer below max_window_layers
    return int(window)


def max_subwords(model: torch.nn.Module, config: Any, tokenizer: Any) -> int:
    """Most input positions the model takes (special tokens included); for a model with
    sliding-window layers at most the window, so that every query attends to every earlier key
    (the pairs the causal CAT convention scores)."""
    window = attention_window(config)
    positions = _max_positions(model, config, tokenizer)
    return positions if window is None else min(positions, window)


def _max_positions(model: torch.nn.Module, config: Any, tokenizer: Any) -> int:
    """Most input positions the model's position encoding takes (special tokens included)."""
    if config.model_type in ENCODER_ONLY_CLASSES:
        # Relative positions: no hard limit; the tokenizer's (CodeT5: 512) is what it was trained on.
        limit = getattr(tokenizer, "model_max_length", None)
        return int(limit) if limit and limit < 1_000_000 else 512
    n_positions = getattr(config, "max_position_embeddings", None)
    if not n_positions:
        raise ModelLoadError(f"cannot tell the maximum input length of {config.model_type!r}")
    padding_idx = getattr(getattr(model, "embeddings", None), "padding_idx", None)
    if padding_idx is not None:
        # RoBERTa family: positions start at padding_idx + 1 (CodeBERT 514 -> 512, UniXcoder 1026 -> 1024).
        return int(n_positions) - int(padding_idx) - 1
    return int(n_positions)


def framing(tokenizer: Any, kind: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(prefix, suffix) special ids the tokenizer puts around content, found on a probe text."""
    mode = tokenizer.convert_tokens_to_ids(_UNIXCODER_MODE) if _UNIXCODER_MODE in tokenizer.get_vocab() else None
    if mode is not None and kind == "encoder":
        # UniXcoder's encoder-only mode: <s> <encoder-only> </s> code </s> (its unixcoder.py).
        cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
        if cls is None or sep is None:
            raise ModelLoadError("a UniXcoder-style vocabulary needs cls and sep tokens")
        return (cls, mode, sep), (sep,)
    probe = "x = 1"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    framed = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for start in range(len(framed) - len(bare) + 1):
        if framed[start : start + len(bare)] == bare:
            return tuple(framed[:start]), tuple(framed[start + len(bare) :])
    raise ModelLoadError("cannot locate the content between the tokenizer's special tokens")


def input_template(tokenizer: Any, prefix: tuple[int, ...], suffix: tuple[int, ...]) -> str:
    """How a snippet is framed, e.g. "<s> {code} </s>": the framing's tokens around `{code}`."""
    specials = (
        [tokenizer.convert_ids_to_tokens(i) for i in prefix],
        [tokenizer.convert_ids_to_tokens(i) for i in suffix],
    )
    return " ".join([*specials[0], "{code}", *specials[1]])

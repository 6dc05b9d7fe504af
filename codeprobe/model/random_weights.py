"""A model's random-weights twin: the same architecture, freshly initialised (seeded), with the
pretrained embeddings copied in, as AST-Probe's random baseline (arXiv:2206.11719) and the
attention-head relations' random-weights baseline use it.

The embeddings are the embedding layer where the model has one module for it (BERT's and
RoBERTa's `embeddings`: tokens, positions, token types and their LayerNorm); else the input
embeddings and every embedding table beside them, so that GPT-2's learned positions (`wpe`,
beside `wte`) are kept as an encoder's are. Rotary models (Llama, Gemma, ...) learn no
positions."""

from __future__ import annotations

import copy
import dataclasses

import torch

from codeprobe.model.loading import LoadedModel

RANDOM_LABEL = "random weights (seed {seed}), pretrained embeddings"


def random_weights(loaded: LoadedModel, seed: int = 0) -> LoadedModel:
    """The same architecture with freshly initialised weights (seeded, without touching the
    global RNG), its embeddings copied from `loaded` as in the paper's random baseline."""
    source = loaded.model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = type(source)(copy.deepcopy(source.config))
    for name in embedding_modules(source):
        model.get_submodule(name).load_state_dict(source.get_submodule(name).state_dict())
    param = next(source.parameters())
    model.to(dtype=param.dtype)
    split = getattr(source, "hf_device_map", None)
    if split and len(set(split.values())) > 1:
        from accelerate import dispatch_model

        model = dispatch_model(model, device_map=split)  # the same layers on the same devices
    else:
        model.to(device=param.device)
    model.eval()
    info = dataclasses.replace(
        loaded.info,
        name=f"{loaded.info.name} [{RANDOM_LABEL.format(seed=seed)}]",
        note=RANDOM_LABEL.format(seed=seed),
    )
    return dataclasses.replace(loaded, model=model, info=info)


def embedding_modules(model: torch.nn.Module) -> list[str]:
    """Names of the modules that hold `model`'s pretrained embeddings: its `embeddings` module
    where it has one, else its input embeddings and the embedding tables that are their siblings
    (learned positions, e.g. GPT-2's `wpe`), in module order."""
    if getattr(model, "embeddings", None) is not None:
        return ["embeddings"]
    names = {id(module): name for name, module in model.named_modules()}
    token = names[id(model.get_input_embeddings())]
    parent = token.rpartition(".")[0]
    return [
        name
        for name, module in model.named_modules()
        if name.rpartition(".")[0] == parent and isinstance(module, torch.nn.Embedding)
    ]

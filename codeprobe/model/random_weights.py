"""A model's random-weights twin: the same architecture, freshly initialised (seeded), with the
pretrained embeddings copied in, as AST-Probe's random baseline (arXiv:2206.11719) and the
attention-head relations' random-weights baseline use it."""

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
    embeddings = getattr(source, "embeddings", None)
    if embeddings is not None:
        model.embeddings.load_state_dict(embeddings.state_dict())
    else:
        model.get_input_embeddings().load_state_dict(source.get_input_embeddings().state_dict())
    param = next(source.parameters())
    model.to(device=param.device, dtype=param.dtype).eval()
    info = dataclasses.replace(
        loaded.info,
        name=f"{loaded.info.name} [{RANDOM_LABEL.format(seed=seed)}]",
        note=RANDOM_LABEL.format(seed=seed),
    )
    return dataclasses.replace(loaded, model=model, info=info)

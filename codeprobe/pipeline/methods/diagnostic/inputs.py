"""The diagnostic classifiers' inputs in a run: each split's token vectors read from AST-Probe's
hidden-state cache, and each token's labels.

The tokens are AST-Probe's (string-collapsed, comments dropped: `tuple_tokens`), whose token
tree (`codeprobe.syntax.token_tree`) the labels are read off, and the split is prepared exactly
as AST-Probe's sweep prepares it (`prepare_split`, same preprocessing, same hidden states where
the config leaves them to AST-Probe): the cache it built is reopened, and the model runs only
where no cache holds the snippets (AST-Probe off, other hidden states, or the random-weights
model's states AST-Probe did not cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.data import SPLITS, read_snippets, read_splits
from codeprobe.pipeline.steps import device_lock, loaded_model, random_weights_model
from codeprobe.syntax import TokenTree, token_tree

WEIGHTS = ("pretrained", "random")


@dataclass(frozen=True, eq=False)
class SplitTokens:
    """One split's snippets as the classifiers read them, in the cache's order.

    Attributes:
        ids: the snippets' ids.
        h: float16 (S, N, hidden): every token's vectors at the S hidden states, snippet after
            snippet (read from the cache's memory maps).
        offsets: int64 (m + 1,): snippet k's tokens are [offsets[k], offsets[k + 1]).
        trees: each snippet's token tree (its tokens are the vectors' tokens).
        dropped: snippets left out, by reason (AST-Probe's: "parse_error", "too_few_tokens",
            "does_not_fit_model").
    """

    ids: tuple[str, ...]
    h: np.ndarray
    offsets: np.ndarray
    trees: tuple[TokenTree, ...]
    dropped: dict[str, int]

    def __len__(self) -> int:
        return len(self.ids)

    def vectors(self, states: Sequence[int] | None = None) -> list[np.ndarray]:
        """(S', n_k, hidden) per snippet: the vectors of the positions `states` of the S hidden
        states (None: all), views where that is a slice."""
        h = self.h if states is None else self.h[np.asarray(states)]
        return [h[:, a:b] for a, b in zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist())]


@dataclass(frozen=True, eq=False)
class RunInputs:
    """The three splits, and what read them.

    Attributes:
        splits: "train", "valid", "test" -> `SplitTokens`.
        hidden_states: the S hidden-state indices of every split's `h`.
        model: the model's provenance (`ModelInfo.as_dict()`).
        max_subwords: the model's input limit (longer snippets were dropped).
    """

    splits: dict[str, SplitTokens]
    hidden_states: tuple[int, ...]
    model: dict[str, Any]
    max_subwords: int


def preprocessing(cfg: RunConfig) -> dict[str, Any]:
    """AST-Probe's preprocessing switches (its defaults when it is off): the same as its sweep's,
    so that its cache is the one reopened."""
    a = cfg.astprobe
    return {
        "remove_docstrings": a.remove_docstrings if a else False,
        "drop_line_continuations": a.drop_line_continuations if a else False,
        "model_input": a.model_input if a else "source",
    }


def read_inputs(
    model: str, language: str, data_dir: str, weights: str, hidden_states: Sequence[int], cfg: RunConfig, cache_dir: str
) -> RunInputs:
    """Each split's token vectors at `hidden_states` and token trees (module docstring).

    Args:
        weights: "pretrained" (the model as loaded) or "random" (its random-weights twin, as
            AST-Probe's baseline makes it).
        hidden_states: the hidden states to read (0 = embeddings), sorted.
        cache_dir: the run's hidden-state cache.

    Raises:
        InputError: a split without a usable snippet.
    """
    from codeprobe.model import Extractor
    from codeprobe.probes.astprobe.data import ensure_nonempty, prepare_split

    device, dtype = cfg.extraction.device, cfg.extraction.dtype
    by_id = {snippet.id: snippet for snippet in read_snippets(data_dir)}
    ids = read_splits(data_dir)
    settings = preprocessing(cfg)
    with device_lock(device):
        loaded = loaded_model(model, device, dtype, **cfg.extraction.placement())
        label = None
        if weights == "random":
            loaded = random_weights_model(model, device, dtype, cfg.seed, **cfg.extraction.placement())
            label = loaded.info.name
        extractor = Extractor(
            loaded, batch_size=cfg.extraction.batch_size, attention=False, hidden_states=True, length_policy="skip"
        )
        prepared = [
            prepare_split(
                [by_id[i] for i in ids[name]],
                language,
                extractor,
                Path(cache_dir),
                model_label=label,
                hidden_states=hidden_states,
                **settings,
            )
            for name in SPLITS
        ]
    ensure_nonempty(prepared, ["training", "validation", "test"])
    splits = {}
    for name, split in zip(SPLITS, prepared):
        h = np.stack([split.cache.hidden_state(s) for s in hidden_states])
        offsets = np.concatenate(([0], np.cumsum(split.cache.lengths))).astype(np.int64)
        trees = tuple(token_tree(t.tokens) for t in split.tuples)  # the cached tokens' tree
        splits[name] = SplitTokens(split.ids, h, offsets, trees, dict(split.dropped))
    return RunInputs(splits, tuple(hidden_states), loaded.info.as_dict(), extractor.max_subwords)

"""A structural probe's inputs read from a model: each snippet's token tree and the model's
hidden states pooled onto that tree's tokens (`token_tree_vectors`).

The tokens are the token tree's with strings collapsed (`parse(code,
language).token_tree(collapse_strings=True)`), AST-Probe's tokens (arXiv:2206.11719), and a
token's vector is the mean of its subwords' hidden states (`codeprobe.model.Extractor`), so the
vectors are what AST-Probe's hidden-state cache holds for the same snippets. A snippet is left
out, with its reason, when the model cannot give every token of its tree a vector: it is
longer than the model's input limit (the extractor's "skip" policy: a cut tree would not be the
snippet's tree), a token has no subword of its own, or it has fewer than 2 tokens (UUAS and NSpr
need an edge).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from codeprobe.errors import InputError
from codeprobe.model import Extractor, ModelInput
from codeprobe.probes.structural.data import MIN_TOKENS
from codeprobe.syntax import TokenTree, parse

SKIP_REASONS = ("too long for the model", "a token without a subword", f"fewer than {MIN_TOKENS} tokens")


@dataclass(frozen=True, eq=False)
class TreeVectors:
    """The snippets a structural probe can read, in input order.

    Attributes:
        ids: each kept snippet's id.
        trees: each kept snippet's gold `TokenTree` (strings collapsed).
        vectors: float32 (S, n_k, hidden) per kept snippet: its tokens' vectors at the S hidden
            states asked for, in that order.
        hidden_states: the S hidden-state indices (0 = the embeddings).
        skipped: (id, reason) of each snippet left out, reasons from `SKIP_REASONS`.
    """

    ids: tuple[Hashable, ...]
    trees: tuple[TokenTree, ...]
    vectors: tuple[np.ndarray, ...]
    hidden_states: tuple[int, ...]
    skipped: tuple[tuple[Hashable, str], ...]

    def __len__(self) -> int:
        return len(self.ids)

    def at(self, position: int) -> list[np.ndarray]:
        """float32 (n_k, hidden) per kept snippet: the vectors of the `position`-th hidden state
        asked for (what a single-hidden-state probe takes)."""
        return [v[position] for v in self.vectors]


def token_tree_vectors(
    snippets: Sequence[tuple[Hashable, str]],
    language: str,
    extractor: Extractor,
    *,
    hidden_states: Sequence[int] | None = None,
) -> TreeVectors:
    """Parse each snippet, read it with the model and pool its hidden states onto its token
    tree's tokens (module docstring).

    Args:
        snippets: (id, code) pairs.
        language: their language (any name `codeprobe.syntax.parse` takes).
        extractor: an `Extractor` with hidden states on and the "skip" length policy.
        hidden_states: which hidden states to keep (None: all, 0..n_layers).

    Raises:
        InputError: an extractor without hidden states or with another length policy, a hidden
            state the model lacks, or an unknown language.

    Code with syntax errors is read as tree-sitter recovers it; callers that want clean code
    filter it first (`codeprobe.datasets.parses_cleanly`).
    """
    if not extractor.hidden_states or extractor.length_policy != "skip":
        raise InputError("token_tree_vectors needs an Extractor with hidden_states=True and length_policy='skip'")
    n_states = extractor.info.n_layers + 1
    states = list(range(n_states)) if hidden_states is None else [int(h) for h in hidden_states]
    if not states or any(not 0 <= h < n_states for h in states):
        raise InputError(f"hidden states {states} do not all exist: {extractor.info.name} has 0..{n_states - 1}")
    trees = [parse(code, language).token_tree(collapse_strings=True) for _, code in snippets]
    inputs = [ModelInput.from_tokens(k, code, tree.tokens) for k, ((_, code), tree) in enumerate(zip(snippets, trees))]
    ids, kept_trees, vectors, skipped = [], [], [], []
    pick = np.asarray(states)
    for result in extractor.extract(inputs):
        ident, tree = snippets[result.id][0], trees[result.id]
        if len(tree) < MIN_TOKENS:
            skipped.append((ident, SKIP_REASONS[2]))
        elif result.status != "ok":
            skipped.append((ident, SKIP_REASONS[0]))
        elif result.hidden_state_tokens.size != len(tree):
            skipped.append((ident, SKIP_REASONS[1]))
        else:
            ids.append(ident)
            kept_trees.append(tree)
            vectors.append(np.ascontiguousarray(result.hidden_states[pick], dtype=np.float32))
    return TreeVectors(tuple(ids), tuple(kept_trees), tuple(vectors), tuple(states), tuple(skipped))

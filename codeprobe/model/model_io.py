"""What the extractor takes and gives per snippet: a `ModelInput` (the text the model reads
and its code tokens' character spans) and its `SnippetResult` (per-layer token attention and
per-hidden-state token hidden states).

A model input may carry a second set of token spans for its hidden states
(`ModelInput.hidden_state_starts`), so that one forward pass serves two probes whose tokens
differ: CAT-probing's attention over the code tokens and AST-Probe's hidden states over its
string-collapsed tokens.

Why `ModelInput` and not `Snippet`: codeprobe has one snippet, `codeprobe.datasets.Snippet`, a
function of a dataset (id, language, source text, where it came from). What the model reads is
another thing: the text it is fed (the source, or the code tokens re-joined by spaces), with
character spans to pool subwords over, and no language. AST-Probe's hidden-state cache stores
exactly these (it had its own `CacheItem` with the same fields); it keys them by `digest`, so
the cache takes `ModelInput`s too and the two types are one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class ModelInput:
    """What the model reads for one snippet: the text and its code tokens' character spans.

    Attributes:
        id: caller's identifier, echoed in the result (a string where a hidden-state cache
            keeps it).
        code: the text the model sees, unchanged.
        token_starts, token_ends: int64 (n,), [start, end) character offsets of the code tokens
            in source order (e.g. `CodeTokens.start_char` / `end_char`).
        hidden_state_starts, hidden_state_ends: int64 (m,), the spans the hidden states are
            pooled over when they are not the code tokens above (None: the same tokens as the
            attention).
    """

    id: Hashable
    code: str
    token_starts: np.ndarray
    token_ends: np.ndarray
    hidden_state_starts: np.ndarray | None = None
    hidden_state_ends: np.ndarray | None = None

    @property
    def hidden_state_spans(self) -> tuple[np.ndarray, np.ndarray]:
        """(starts, ends) of the tokens the hidden states are pooled over."""
        if self.hidden_state_starts is None:
            return self.token_starts, self.token_ends
        return self.hidden_state_starts, self.hidden_state_ends

    @cached_property
    def digest(self) -> str:
        """sha256 of what shapes the input's pooled hidden states under one model: its text and
        the spans they are pooled over (`hidden_state_spans`)."""
        starts, ends = self.hidden_state_spans
        h = hashlib.sha256(self.code.encode() + b"\0")
        h.update(np.asarray(starts, np.int64).tobytes() + b"\0")
        h.update(np.asarray(ends, np.int64).tobytes())
        return h.hexdigest()

    def with_hidden_state_tokens(self, tokens: Any) -> ModelInput:
        """This input with its hidden states pooled over `tokens` (any object with
        `start_char` / `end_char` arrays) instead of its code tokens."""
        return ModelInput(
            self.id,
            self.code,
            self.token_starts,
            self.token_ends,
            np.asarray(tokens.start_char, np.int64),
            np.asarray(tokens.end_char, np.int64),
        )

    @classmethod
    def from_tokens(cls, id: Hashable, code: str, tokens: Any) -> ModelInput:
        """The input from any object with `start_char` / `end_char` arrays (e.g. `CodeTokens`)."""
        return cls(id, code, np.asarray(tokens.start_char, np.int64), np.asarray(tokens.end_char, np.int64))

    @classmethod
    def joined(cls, id: Hashable, texts: Sequence[str], *, collapse_whitespace: bool = False) -> ModelInput:
        """The code tokens' texts joined by single spaces: what the papers' reference code fed
        its models instead of the source text (CAT-probing, arXiv 2210.04633: CodeSearchNet's
        `code_tokens` joined by spaces; AST-Probe, arXiv 2206.11719: each token tokenized after
        a space).

        Args:
            id: the input's id.
            texts: (n,) the code tokens' texts, in source order.
            collapse_whitespace: turn every run of whitespace inside a token into one space and
                strip its ends, as CAT-probing's reference does (`" ".join(code.split())`); a
                token left empty gets a zero-width span and no separator, so it gets no subword.

        Returns:
            A ModelInput whose `code` is the joined text and whose spans are the tokens' places in it.
        """
        if collapse_whitespace:
            texts = [" ".join(t.split()) for t in texts]
        lengths = np.fromiter((len(t) for t in texts), np.int64, len(texts))
        # Each non-empty token after the first non-empty one is preceded by one space; an empty
        # token sits at the end of the text before it, where no subword can overlap it.
        gap = np.cumsum(lengths > 0) > 1
        gap &= lengths > 0
        ends = np.cumsum(lengths + gap)
        starts = ends - lengths
        return cls(id, " ".join(t for t in texts if t), starts, ends)


@dataclass(frozen=True, eq=False)
class SnippetResult:
    """Extraction result of one snippet.

    Attributes:
        id: the snippet's id.
        status: "ok", "truncated" (input cut at a token boundary) or "skipped" (too long under
            the "skip" policy: no arrays).
        tokens: int64 (k,), indices of the code tokens that have rows below (kept tokens).
        attention: float32 (n_layers, k, k) head-mean (or head-max) token attention, or
            (n_layers, n_heads, k, k) per head; row = query, column = key; layer l is the l-th
            transformer layer (`outputs.attentions[l]`). None when not requested or skipped.
        hidden_states: float32 (n_layers + 1, kh, hidden), the token hidden states: index h =
            the model's `hidden_states[h]` (0 = embeddings, h >= 1 = output of the h-th transformer
            layer, i.e. of `attention` layer h - 1; the last one as the model returns it, e.g.
            after a final layer norm), pooled over the rows `hidden_state_tokens`. None when not requested or skipped.
        n_subwords: subwords of the whole snippet, specials excluded (whitespace ones included).
        n_subwords_used: subwords fed to the model, specials excluded (0 when skipped).
        n_unmatched_subwords, n_tokens_without_subword, n_shared_subwords: alignment counts of
            the whole (untruncated) snippet; see `Alignment`.
        n_tokens_truncated: tokens that had subwords but fell past the truncation point (0 unless
            truncated).
        hidden_state_tokens: int64 (kh,), the rows of `hidden_states`: indices into the input's
            hidden-state spans (`ModelInput.hidden_state_starts`), or equal to `tokens` when it
            has none. Such a token is kept when it has subwords and all of them were fed to the
            model.
    """

    id: Hashable
    status: str
    tokens: np.ndarray
    attention: np.ndarray | None
    hidden_states: np.ndarray | None
    n_subwords: int
    n_subwords_used: int
    n_unmatched_subwords: int
    n_tokens_without_subword: int
    n_shared_subwords: int
    n_tokens_truncated: int
    hidden_state_tokens: np.ndarray

"""From snippets to the model's batches: each snippet tokenised and aligned to its code tokens,
the length policy applied (`prepare`), snippets of similar length batched together (`batches`)
and a batch's right-padded input ids and mask (`padded_inputs`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codeprobe.alignment import Alignment, align, token_boundary_cut
from codeprobe.errors import InputError
from codeprobe.model.model_io import ModelInput, SnippetResult


@dataclass(frozen=True, eq=False)
class Prepared:
    """A model input after tokenisation, alignment and the length policy."""

    model_input: ModelInput
    alignment: Alignment
    n_subwords: int  # subwords of the whole snippet, specials excluded
    ids: list[int]  # subword ids fed to the model, specials excluded
    rows: np.ndarray  # kept-token rows of `alignment` whose subwords all fit
    status: str
    hidden_state_alignment: Alignment | None = None  # of the input's own hidden-state spans
    hidden_state_rows: np.ndarray | None = None  # its kept rows whose subwords all fit

    @property
    def hidden_state_pairs(self) -> tuple[Alignment, np.ndarray]:
        """(alignment, kept rows) the hidden states are pooled over."""
        if self.hidden_state_alignment is None:
            return self.alignment, self.rows
        return self.hidden_state_alignment, self.hidden_state_rows

    def result(self, attention: np.ndarray | None, hidden_states: np.ndarray | None) -> SnippetResult:
        """The snippet's result with its pooled `attention` and `hidden_states` (None: not
        computed)."""
        al = self.alignment
        hs_al, hs_rows = self.hidden_state_pairs
        if hidden_states is not None and hidden_states.shape[1] != hs_rows.shape[0]:  # not run: no rows
            hs_rows = hs_rows[:0]
        return SnippetResult(
            id=self.model_input.id,
            status=self.status,
            tokens=al.tokens[self.rows],
            attention=attention,
            hidden_states=hidden_states,
            n_subwords=self.n_subwords,
            n_subwords_used=len(self.ids),
            n_unmatched_subwords=al.n_unmatched_subwords,
            n_tokens_without_subword=al.n_tokens_without_subword,
            n_shared_subwords=al.n_shared_subwords,
            n_tokens_truncated=al.n_kept - int(self.rows.shape[0]) if self.status == "truncated" else 0,
            hidden_state_tokens=hs_al.tokens[hs_rows],
        )


def prepare(
    chunk: Sequence[ModelInput], tokenizer: Any, budget: int, length_policy: str, hidden_states: bool
) -> list[Prepared]:
    """`chunk` tokenised (one call) and aligned, each input cut at a code-token boundary to
    `budget` subwords (specials excluded) or skipped (`length_policy`); `hidden_states`: align
    the inputs' own hidden-state spans too.

    Raises:
        InputError: an item that is not a ModelInput, or code that is not text.
        AlignmentError: token spans out of range or out of order.
    """
    for s in chunk:
        if not isinstance(s, ModelInput):
            raise InputError(f"expected ModelInput, got {type(s).__name__}")
        if not isinstance(s.code, str):
            raise InputError(f"snippet {s.id!r}: code must be str, got {type(s.code).__name__}")
    enc = tokenizer(
        [s.code for s in chunk],
        add_special_tokens=False,
        return_offsets_mapping=True,
        # Code may contain text such as "</s>"; it is code, never a control token.
        split_special_tokens=True,
        return_attention_mask=False,
        return_token_type_ids=False,
        # No "Token indices sequence length is longer than ... (N > 512)" warning: the full
        # length is wanted here, and every input is cut to `budget` or skipped below.
        verbose=False,
    )
    out = []
    for s, ids, offsets in zip(chunk, enc["input_ids"], enc["offset_mapping"]):
        offsets = np.asarray(offsets, dtype=np.int64)
        al = align(s.code, offsets, s.token_starts, s.token_ends)
        hs_al = None
        if s.hidden_state_starts is not None and hidden_states:
            hs_al = align(s.code, offsets, s.hidden_state_starts, s.hidden_state_ends)
        status, rows, n_full = "ok", np.arange(al.n_kept), len(ids)
        hs_rows = None if hs_al is None else np.arange(hs_al.n_kept)
        if n_full > budget:
            if length_policy == "skip":
                out.append(
                    Prepared(s, al, n_full, [], rows[:0], "skipped", hs_al, None if hs_al is None else hs_rows[:0])
                )
                continue
            cut = token_boundary_cut(al, budget)
            ids, status = ids[:cut], "truncated"
            rows = np.flatnonzero(al.last_subword < cut)
            if hs_al is not None:
                hs_rows = np.flatnonzero(hs_al.last_subword < cut)
        out.append(Prepared(s, al, n_full, ids, rows, status, hs_al, hs_rows))
    return out


def batches(prepared: Sequence[Prepared], batch_size: int) -> Iterator[list[Prepared]]:
    """The snippets that run (not skipped, some token kept) in batches of `batch_size`, shortest
    first: batches of similar lengths, so padding costs little (results do not depend on the
    batch)."""
    run = [p for p in prepared if p.status != "skipped" and p.rows.shape[0] > 0]
    run.sort(key=lambda p: len(p.ids))
    for start in range(0, len(run), batch_size):
        yield run[start : start + batch_size]


def padded_inputs(
    run: Sequence[Prepared], prefix: list[int], suffix: list[int], pad_id: int
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(input ids, attention mask, lengths) of a batch: each snippet framed by the special ids
    `prefix` and `suffix`, right-padded with `pad_id` (masked) to the longest; int64 (B, n)."""
    lengths = [len(prefix) + len(p.ids) + len(suffix) for p in run]
    n, b = max(lengths), len(run)
    input_ids = np.full((b, n), pad_id, dtype=np.int64)
    mask = np.zeros((b, n), dtype=np.int64)
    for i, p in enumerate(run):
        input_ids[i, : lengths[i]] = prefix + p.ids + suffix
        mask[i, : lengths[i]] = 1
    return input_ids, mask, lengths

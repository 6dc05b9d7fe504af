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
from codeprobe.model.snippet import Snippet, SnippetResult


@dataclass(frozen=True, eq=False)
class Prepared:
    """A snippet after tokenisation, alignment and the length policy."""

    snippet: Snippet
    alignment: Alignment
    n_subwords: int  # subwords of the whole snippet, specials excluded
    ids: list[int]  # subword ids fed to the model, specials excluded
    rows: np.ndarray  # kept-token rows of `alignment` whose subwords all fit
    status: str
    vector_alignment: Alignment | None = None  # of the snippet's own vector spans
    vector_rows: np.ndarray | None = None  # its kept rows whose subwords all fit

    @property
    def vector_pairs(self) -> tuple[Alignment, np.ndarray]:
        """(alignment, kept rows) the vectors are pooled over."""
        if self.vector_alignment is None:
            return self.alignment, self.rows
        return self.vector_alignment, self.vector_rows

    def result(self, attention: np.ndarray | None, vectors: np.ndarray | None) -> SnippetResult:
        """The snippet's result with its pooled `attention` and `vectors` (None: not computed)."""
        al = self.alignment
        vec_al, vec_rows = self.vector_pairs
        if vectors is not None and vectors.shape[1] != vec_rows.shape[0]:  # not run: no rows
            vec_rows = vec_rows[:0]
        return SnippetResult(
            id=self.snippet.id,
            status=self.status,
            tokens=al.tokens[self.rows],
            attention=attention,
            vectors=vectors,
            n_subwords=self.n_subwords,
            n_subwords_used=len(self.ids),
            n_unmatched_subwords=al.n_unmatched_subwords,
            n_tokens_without_subword=al.n_tokens_without_subword,
            n_shared_subwords=al.n_shared_subwords,
            n_tokens_truncated=al.n_kept - int(self.rows.shape[0]) if self.status == "truncated" else 0,
            vector_tokens=vec_al.tokens[vec_rows],
        )


def prepare(chunk: Sequence[Snippet], tokenizer: Any, budget: int, length_policy: str, vectors: bool) -> list[Prepared]:
    """`chunk` tokenised (one call) and aligned, each snippet cut at a code-token boundary to
    `budget` subwords (specials excluded) or skipped (`length_policy`); `vectors`: align the
    snippets' own vector spans too.

    Raises:
        InputError: an item that is not a Snippet, or code that is not text.
        AlignmentError: token spans out of range or out of order.
    """
    for s in chunk:
        if not isinstance(s, Snippet):
            raise InputError(f"expected Snippet, got {type(s).__name__}")
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
    )
    out = []
    for s, ids, offsets in zip(chunk, enc["input_ids"], enc["offset_mapping"]):
        offsets = np.asarray(offsets, dtype=np.int64)
        al = align(s.code, offsets, s.token_starts, s.token_ends)
        vec_al = None
        if s.vector_starts is not None and vectors:
            vec_al = align(s.code, offsets, s.vector_starts, s.vector_ends)
        status, rows, n_full = "ok", np.arange(al.n_kept), len(ids)
        vec_rows = None if vec_al is None else np.arange(vec_al.n_kept)
        if n_full > budget:
            if length_policy == "skip":
                out.append(
                    Prepared(s, al, n_full, [], rows[:0], "skipped", vec_al, None if vec_al is None else vec_rows[:0])
                )
                continue
            cut = token_boundary_cut(al, budget)
            ids, status = ids[:cut], "truncated"
            rows = np.flatnonzero(al.last_subword < cut)
            if vec_al is not None:
                vec_rows = np.flatnonzero(vec_al.last_subword < cut)
        out.append(Prepared(s, al, n_full, ids, rows, status, vec_al, vec_rows))
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

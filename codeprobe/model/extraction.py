"""Per-layer token attention and token vectors of a model, aligned to code tokens.

One forward pass per batch gives every layer. Attention is pooled inside forward hooks on the
attention modules, so at most one layer's (batch x heads x n x n) weights exist at a time;
nothing is kept across batches, so peak memory does not grow with the number of snippets.
The pooling itself (`codeprobe.model.pooling`) runs compiled per-snippet loops when the model is
on the CPU and torch sparse products on other devices; both give the same numbers.

Token attention (CAT-probing step 3): mean over heads, then the block mean over subword pairs,
W A W^T; special tokens drop out because W has no column weight on them; rows are not
renormalised. `heads="max"` takes the maximum over heads instead, before the block mean, as the
CAT-probing reference code offers (arXiv 2210.04633; its `action_per_head`). Token vectors
(AST-Probe): mean of the token's subword vectors, W H.

A snippet may carry a second set of token spans for its vectors (`Snippet.vector_starts`), so
that one forward pass serves two probes whose tokens differ: CAT-probing's attention over the
code tokens and AST-Probe's vectors over its string-collapsed tokens.

Under glibc, the peak RSS of any long torch loop (a bare forward pass too) creeps up by about a
tenth over thousands of batches as the heap fragments; MALLOC_MMAP_THRESHOLD_=1048576 in the
environment removes that creep (see benchmarks/bench_extraction.py).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from codeprobe.alignment import Alignment, align, token_boundary_cut
from codeprobe.errors import InputError, ModelLoadError
from codeprobe.model.loading import LoadedModel, ModelInfo, load_model
from codeprobe.model.pooling import KernelPooling, Members, SparsePooling
from codeprobe.prefetch import prefetched, windows

LENGTH_POLICIES = ("truncate", "skip")
POOLINGS = ("auto", "kernels", "sparse")
HEAD_MODES = ("mean", "max", "all")


@dataclass(frozen=True, eq=False)
class Snippet:
    """One input: source text and its code tokens' character spans.

    Attributes:
        id: caller's identifier, echoed in the result.
        code: the source text the model sees, unchanged.
        token_starts, token_ends: int64 (n,), [start, end) character offsets of the code tokens
            in source order (e.g. `CodeTokens.start_char` / `end_char`).
        vector_starts, vector_ends: int64 (m,), the spans the token vectors are pooled over when
            they are not the code tokens above (None: the same tokens as the attention).
    """

    id: Hashable
    code: str
    token_starts: np.ndarray
    token_ends: np.ndarray
    vector_starts: np.ndarray | None = None
    vector_ends: np.ndarray | None = None

    def with_vector_tokens(self, tokens: Any) -> Snippet:
        """This snippet with vectors pooled over `tokens` (any object with `start_char` /
        `end_char` arrays) instead of its code tokens."""
        return Snippet(
            self.id,
            self.code,
            self.token_starts,
            self.token_ends,
            np.asarray(tokens.start_char, np.int64),
            np.asarray(tokens.end_char, np.int64),
        )

    @classmethod
    def from_tokens(cls, id: Hashable, code: str, tokens: Any) -> Snippet:
        """Snippet from any object with `start_char` / `end_char` arrays (e.g. `CodeTokens`)."""
        return cls(id, code, np.asarray(tokens.start_char, np.int64), np.asarray(tokens.end_char, np.int64))

    @classmethod
    def joined(cls, id: Hashable, texts: Sequence[str], *, collapse_whitespace: bool = False) -> Snippet:
        """The code tokens' texts joined by single spaces: what the papers' reference code fed
        its models instead of the source text (CAT-probing, arXiv 2210.04633: CodeSearchNet's
        `code_tokens` joined by spaces; AST-Probe, arXiv 2206.11719: each token tokenized after
        a space).

        Args:
            id: the snippet's id.
            texts: (n,) the code tokens' texts, in source order.
            collapse_whitespace: turn every run of whitespace inside a token into one space and
                strip its ends, as CAT-probing's reference does (`" ".join(code.split())`); a
                token left empty gets a zero-width span and no separator, so it gets no subword.

        Returns:
            A Snippet whose `code` is the joined text and whose spans are the tokens' places in it.
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
        vectors: float32 (n_layers + 1, k, hidden), index l = `hidden_states[l]` (0 = embeddings,
            the last one as the model returns it, e.g. after a final layer norm). None when not
            requested or skipped.
        n_subwords: subwords of the whole snippet, specials excluded (whitespace ones included).
        n_subwords_used: subwords fed to the model, specials excluded (0 when skipped).
        n_unmatched_subwords, n_tokens_without_subword, n_shared_subwords: alignment counts of
            the whole (untruncated) snippet; see `Alignment`.
        n_tokens_truncated: tokens that had subwords but fell past the truncation point (0 unless
            truncated).
        vector_tokens: int64 (kv,), the rows of `vectors`: indices into the snippet's vector
            spans (`Snippet.vector_starts`), or equal to `tokens` when it has none. A vector
            token is kept when it has subwords and all of them were fed to the model.
    """

    id: Hashable
    status: str
    tokens: np.ndarray
    attention: np.ndarray | None
    vectors: np.ndarray | None
    n_subwords: int
    n_subwords_used: int
    n_unmatched_subwords: int
    n_tokens_without_subword: int
    n_shared_subwords: int
    n_tokens_truncated: int
    vector_tokens: np.ndarray


@dataclass(frozen=True, eq=False)
class _Prepared:
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


class _AttentionHooks:
    """Forward hooks that hand each layer's attention weights to the batch's pooling as soon as
    the layer has run, so only one layer's (B x heads x n x n) weights are ever alive."""

    def __init__(self, modules: list[tuple[torch.nn.Module, int]], pooling: KernelPooling | SparsePooling):
        self.pooling = pooling
        self.n_layers = 0
        self.handles = [m.register_forward_hook(self._make_hook(i)) for m, i in modules]

    def _make_hook(self, index: int):
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            weights = output[index] if isinstance(output, tuple) else None
            if weights is None:
                raise ModelLoadError(
                    f"{type(module).__name__} returned no attention weights: the model must use eager attention"
                )
            self.pooling.pool_attention(self.n_layers, weights)
            self.n_layers += 1

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _attention_modules(model: torch.nn.Module) -> list[tuple[torch.nn.Module, int]]:
    """(module, output index of its attention weights) in forward order.

    Uses the model's own declaration of where attentions come from (transformers'
    `_can_record_outputs`, the table behind `output_attentions`), so it follows every
    architecture transformers supports in that way.
    """
    from transformers.utils.output_capturing import OutputRecorder

    specs = getattr(model, "_can_record_outputs", None) or {}
    spec = specs.get("attentions")
    if spec is None:
        raise ModelLoadError(
            f"{type(model).__name__} does not declare its attention modules; codeprobe cannot capture its attention"
        )
    specs_list = spec if isinstance(spec, list) else [spec]
    found = []
    for name, module in model.named_modules():
        dotted = f".{name}."
        for s in specs_list:
            if not isinstance(s, OutputRecorder):
                s = OutputRecorder(
                    target_class=None if isinstance(s, str) else s,
                    index=1,
                    class_name=s if isinstance(s, str) else None,
                )
            by_class = s.target_class is not None and isinstance(module, s.target_class)
            by_name = s.class_name is not None and f".{name}".endswith(s.class_name)
            if (by_class or by_name) and (s.layer_name is None or f".{s.layer_name.strip('.')}." in dotted):
                found.append((module, s.index))
                break
    return found


class Extractor:
    """Extract per-layer token attention and token vectors of code snippets.

    Args:
        model: a LoadedModel, or a name / path / None (packaged default) to load with
            `device` and `dtype`.
        batch_size: snippets per forward pass (right-padded, masked).
        device, dtype: only when `model` is a name (the LoadedModel fixes its own).
        heads: "mean" (head-mean attention), "max" (maximum over heads of the subword
            attention, then the block mean; CAT-probing's reference offers it) or "all"
            (per head).
        attention, vectors: which outputs to compute (skip one to save work).
        length_policy: for snippets longer than the model takes: "truncate" (cut at a code-token
            boundary, as CAT-probing truncates) or "skip" (AST-Probe drops snippets that do not
            fit). A sliding window is not offered: CAT-probing needs attention between every
            token pair, which does not exist across windows, and vectors from different windows
            would mix contexts within one snippet; neither paper used one.
        max_subwords: lower limit than the model's on input length (specials included), e.g.
            CAT-probing's 256.
        check_attention: verify per batch and layer that every real token's pooled attention row
            sums to 1 over the real keys (softmax rows that give padding nothing).
        bucket_batches: snippets are read in windows of `bucket_batches * batch_size`, and each
            window runs in batches of similar subword length (less padding); results still come
            in input order. 1: batches in input order.
        pooling: how subwords are pooled to tokens: "kernels" (compiled loops on the CPU, the
            model's outputs copied there first), "sparse" (torch sparse products on the model's
            device) or "auto" (kernels for a model on the CPU, sparse elsewhere). The results
            agree to float32 rounding.
        prefetch: tokenise and align the next window in a background thread while the model
            runs (callers that prepare snippets read `prefetch` to do the same). None: only when
            the model is not on the CPU; on the CPU torch's threads already use every core, and
            a busy thread beside them slows the forward pass more than the work it takes over.
    """

    def __init__(
        self,
        model: LoadedModel | str | None = None,
        *,
        batch_size: int = 16,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        heads: str = "mean",
        attention: bool = True,
        vectors: bool = True,
        length_policy: str = "truncate",
        max_subwords: int | None = None,
        check_attention: bool = True,
        bucket_batches: int = 8,
        pooling: str = "auto",
        prefetch: bool | None = None,
    ):
        if heads not in HEAD_MODES:
            raise InputError(f"heads must be one of {HEAD_MODES}, got {heads!r}")
        if length_policy == "window":
            raise InputError(
                "length_policy 'window' is not supported: attention between tokens in different "
                "windows does not exist (CAT-probing needs every pair); use 'truncate' or 'skip'"
            )
        if length_policy not in LENGTH_POLICIES:
            raise InputError(f"length_policy must be one of {LENGTH_POLICIES}, got {length_policy!r}")
        if not (attention or vectors):
            raise InputError("nothing to extract: attention and vectors are both off")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        if bucket_batches < 1:
            raise InputError(f"bucket_batches must be >= 1, got {bucket_batches}")
        if pooling not in POOLINGS:
            raise InputError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if isinstance(model, LoadedModel):
            if device is not None or dtype is not None:
                raise InputError("device and dtype apply when loading; this model is already loaded")
            self.loaded = model
        else:
            self.loaded = load_model(model, device=device, dtype=dtype or "float32")
        info = self.loaded.info
        framing = len(self.loaded.prefix_ids) + len(self.loaded.suffix_ids)
        limit = info.max_subwords if max_subwords is None else min(max_subwords, info.max_subwords)
        if limit <= framing:
            raise InputError(f"max_subwords {limit} leaves no room beside {framing} special tokens")
        self.batch_size = batch_size
        self.bucket_batches = bucket_batches
        self.heads = heads
        self.attention = attention
        self.vectors = vectors
        self.length_policy = length_policy
        self.max_subwords = limit
        self.check_attention = check_attention
        on_cpu = torch.device(self.loaded.device).type == "cpu"
        self._kernels = pooling == "kernels" or (pooling == "auto" and on_cpu)
        self.prefetch = not on_cpu if prefetch is None else bool(prefetch)
        self._attention_modules = _attention_modules(self.loaded.model) if attention else []
        if attention and len(self._attention_modules) != info.n_layers:
            raise ModelLoadError(
                f"{info.architecture}: found {len(self._attention_modules)} attention modules for "
                f"{info.n_layers} layers"
            )

    @property
    def info(self) -> ModelInfo:
        """Provenance of the model; record it with every result."""
        return self.loaded.info

    def extract(self, snippets: Iterable[Snippet]) -> Iterator[SnippetResult]:
        """Results for `snippets`, one per snippet, in order; lazily, batch by batch.

        Raises:
            InputError: an item that is not a Snippet.
            AlignmentError: token spans out of range or out of order.
            ModelLoadError: the model returned no usable attention weights.
        """
        # Tokenise and align the next window while the model runs on this one.
        chunks = windows(snippets, self.batch_size, self.batch_size * self.bucket_batches)
        for prepared in prefetched(chunks, self._prepare) if self.prefetch else map(self._prepare, chunks):
            # Inference mode only around the window: a `with` spanning the `yield` would leak it
            # into the caller's code between items.
            with torch.inference_mode():
                results = self._run(prepared)
            yield from results

    def _prepare(self, chunk: Sequence[Snippet]) -> list[_Prepared]:
        for s in chunk:
            if not isinstance(s, Snippet):
                raise InputError(f"expected Snippet, got {type(s).__name__}")
            if not isinstance(s.code, str):
                raise InputError(f"snippet {s.id!r}: code must be str, got {type(s.code).__name__}")
        enc = self.loaded.tokenizer(
            [s.code for s in chunk],
            add_special_tokens=False,
            return_offsets_mapping=True,
            # Code may contain text such as "</s>"; it is code, never a control token.
            split_special_tokens=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        budget = self.max_subwords - len(self.loaded.prefix_ids) - len(self.loaded.suffix_ids)
        out = []
        for s, ids, offsets in zip(chunk, enc["input_ids"], enc["offset_mapping"]):
            offsets = np.asarray(offsets, dtype=np.int64)
            al = align(s.code, offsets, s.token_starts, s.token_ends)
            vec_al = None
            if s.vector_starts is not None and self.vectors:
                vec_al = align(s.code, offsets, s.vector_starts, s.vector_ends)
            status, rows, n_full = "ok", np.arange(al.n_kept), len(ids)
            vec_rows = None if vec_al is None else np.arange(vec_al.n_kept)
            if n_full > budget:
                if self.length_policy == "skip":
                    out.append(
                        _Prepared(
                            s, al, n_full, [], rows[:0], "skipped", vec_al, None if vec_al is None else vec_rows[:0]
                        )
                    )
                    continue
                cut = token_boundary_cut(al, budget)
                ids, status = ids[:cut], "truncated"
                rows = np.flatnonzero(al.last_subword < cut)
                if vec_al is not None:
                    vec_rows = np.flatnonzero(vec_al.last_subword < cut)
            out.append(_Prepared(s, al, n_full, ids, rows, status, vec_al, vec_rows))
        return out

    def _run(self, prepared: list[_Prepared]) -> list[SnippetResult]:
        run = [p for p in prepared if p.status != "skipped" and p.rows.shape[0] > 0]
        # Batches of similar lengths: padding costs little (results do not depend on the batch).
        run.sort(key=lambda p: len(p.ids))
        pooled = {}
        for start in range(0, len(run), self.batch_size):
            pooled.update(self._forward(run[start : start + self.batch_size]))
        results = []
        for p in prepared:
            if p.status == "skipped":
                results.append(p.result(None, None))
            elif id(p) in pooled:
                results.append(p.result(*pooled[id(p)]))
            else:  # no token kept: nothing to run, empty arrays of the right rank
                results.append(p.result(*self._empty()))
        return results

    def _empty(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        info = self.info
        head_dims = (info.n_heads,) if self.heads == "all" else ()
        att = np.zeros((info.n_layers, *head_dims, 0, 0), np.float32) if self.attention else None
        vec = np.zeros((info.n_layers + 1, 0, info.hidden_size), np.float32) if self.vectors else None
        return att, vec

    def _forward(self, run: list[_Prepared]) -> dict[int, tuple[np.ndarray | None, np.ndarray | None]]:
        """Pool one batch; returns {id(prepared): (attention, vectors)}."""
        lm = self.loaded
        prefix, suffix = list(lm.prefix_ids), list(lm.suffix_ids)
        lengths = [len(prefix) + len(p.ids) + len(suffix) for p in run]
        n, b = max(lengths), len(run)

        input_ids = np.full((b, n), lm.pad_id, dtype=np.int64)
        mask = np.zeros((b, n), dtype=np.int64)
        for i, p in enumerate(run):
            input_ids[i, : lengths[i]] = prefix + p.ids + suffix
            mask[i, : lengths[i]] = 1

        device = lm.device
        info = lm.info
        att_members = [Members.of(p.alignment, p.rows, len(prefix)) for p in run] if self.attention else None
        vec_members = None
        if self.vectors:
            own = any(p.vector_alignment is not None for p in run)
            vec_members = (
                [Members.of(*p.vector_pairs, len(prefix)) for p in run] if own or not self.attention else att_members
            )
        args = (att_members, vec_members, lengths, info.n_layers, info.n_heads, info.hidden_size, self.heads)
        pooling = KernelPooling(*args) if self._kernels else SparsePooling(*args, device)
        hooks = _AttentionHooks(self._attention_modules, pooling) if self.attention else None
        try:
            out = lm.model(
                input_ids=torch.from_numpy(input_ids).to(device),
                attention_mask=torch.from_numpy(mask).to(device),
                output_hidden_states=self.vectors,
                return_dict=True,
            )
        finally:
            if hooks is not None:
                hooks.remove()
        if hooks is not None:
            if hooks.n_layers != info.n_layers:
                raise ModelLoadError(f"captured attention of {hooks.n_layers} layers, expected {info.n_layers}")
            if self.check_attention:
                self._check_rows(
                    pooling.row_sum_errors(), 1e-3 if info.dtype == "float32" else 5e-2
                )  # half precision rounds
        if self.vectors:
            pooling.pool_vectors(out.hidden_states)
        return {id(p): pooled for p, pooled in zip(run, pooling.results())}

    @staticmethod
    def _check_rows(errors: np.ndarray, tol: float) -> None:
        """Raise unless every real token's pooled attention row is a softmax row over the real
        keys in every layer (`row_sum_error` within `tol`)."""
        worst = int(np.argmax(errors))
        if not float(errors[worst]) <= tol:
            raise ModelLoadError(
                f"attention rows of layer {worst} do not sum to 1 over unpadded keys (max error "
                f"{float(errors[worst]):.2g}): the model's attention output is not softmax weights"
            )

"""Per-layer token attention and token vectors of a model, aligned to code tokens.

One forward pass per batch gives every layer. Attention is pooled inside forward hooks on the
attention modules, so at most one layer's (batch x heads x n x n) weights exist at a time;
nothing is kept across batches, so peak memory does not grow with the number of snippets.

Token attention (CAT-probing step 3): mean over heads, then the block mean over subword pairs,
W A W^T; special tokens drop out because W has no column weight on them; rows are not
renormalised. `heads="max"` takes the maximum over heads instead, before the block mean, as the
CAT-probing reference code offers (arXiv 2210.04633; its `action_per_head`). Token vectors
(AST-Probe): mean of the token's subword vectors, W H. W is applied as a sparse block-diagonal
matrix over the whole batch (a few non-zeros per row), folding the head mean into the same
product.

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
from itertools import islice
from typing import Any

import numpy as np
import torch

from codeprobe.alignment import Alignment, align, token_boundary_cut
from codeprobe.errors import InputError, ModelLoadError
from codeprobe.model.loading import LoadedModel, ModelInfo, load_model
from codeprobe.prefetch import prefetched

LENGTH_POLICIES = ("truncate", "skip")
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
        return Snippet(self.id, self.code, self.token_starts, self.token_ends,
                       np.asarray(tokens.start_char, np.int64), np.asarray(tokens.end_char, np.int64))

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


def _sparse(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int], device) -> torch.Tensor:
    """Coalesced COO matrix from entries (sorted here, so no coalescing pass is needed)."""
    order = np.lexsort((cols, rows))
    index = torch.from_numpy(np.stack([rows[order], cols[order]]).astype(np.int64))
    value = torch.from_numpy(values[order].astype(np.float32))
    return torch.sparse_coo_tensor(index, value, shape, is_coalesced=True, check_invariants=False).to(device)


@dataclass(frozen=True, eq=False)
class _BatchPooling:
    """The pooling matrices W of a batch as sparse matrices over the flattened batch.

    W is block-diagonal (snippet b's token rows only read snippet b's positions), with a few
    non-zeros per row, so a sparse product costs a small fraction of the dense W A W^T.

    Attributes:
        w: (B * k_max, B * n), row b * k_max + i, column b * n + p: 1/|S_i| for p in S_i.
        w_att: applied to the attention flattened to (B * H * n, n): with `heads == "mean"`,
            (B * k_max, B * H * n) holding 1/(|S_i| H), i.e. head mean and row pooling in one
            product; per head, (B * k_max * H, B * H * n) holding 1/|S_i|; with
            `heads == "max"`, `w` itself, applied after the maximum over heads.
        valid: float32 (B, k_max, 1), 1 on real token rows.
        head_max: pool the maximum over heads (`heads == "max"`).
    """

    w: torch.Tensor
    w_att: torch.Tensor | None
    valid: torch.Tensor
    n_snippets: int
    k_max: int
    n: int
    head_max: bool = False

    @classmethod
    def build(cls, batch, row, col, weight, n_snippets, k_max, n, n_heads, heads, attention, device):
        """From the batch's (token, subword) entries: snippet, token row, input position, 1/|S_i|;
        `heads` is one of HEAD_MODES."""
        b, k, h = n_snippets, k_max, n_heads
        w = _sparse(batch * k + row, batch * n + col, weight, (b * k, b * n), device)
        w_att = None
        if attention and heads == "max":
            w_att = w
        elif attention:
            head_ids = np.arange(h)
            att_cols = ((batch[:, None] * h + head_ids) * n + col[:, None]).ravel()
            if heads == "all":
                att_rows = ((batch * k + row)[:, None] * h + head_ids).ravel()
                w_att = _sparse(att_rows, att_cols, np.repeat(weight, h), (b * k * h, b * h * n), device)
            else:
                att_rows = np.repeat(batch * k + row, h)
                w_att = _sparse(att_rows, att_cols, np.repeat(weight / h, h), (b * k, b * h * n), device)
        valid = np.zeros((b, k, 1), dtype=np.float32)
        valid[batch, row] = 1.0
        return cls(w, w_att, torch.from_numpy(valid).to(device), b, k, n, heads == "max")

    def vectors(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (B, n, d) -> float32 (B, k_max, d): mean of each token's subword vectors."""
        flat = hidden.reshape(self.n_snippets * self.n, -1).to(torch.float32)
        return torch.sparse.mm(self.w, flat).view(self.n_snippets, self.k_max, -1)

    def attention(self, weights: torch.Tensor, key_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """weights (B, H, n, n), key_mask (B, n, 1) -> (pooled, row sums over real keys).

        pooled: (B, k, k) head mean or head max, or (B, H, k, k); row_sums: (B, k, 1) or
        (B, k, H), the sums of each token's pooled query row over the real keys (1 when every
        subword row is softmax weights that give padded keys nothing); for the head max,
        (B, k, 2): the sums over the real keys (>= 1) and over the padded ones (0).
        """
        b, k, n = self.n_snippets, self.k_max, self.n
        if self.head_max:
            weights = weights.amax(dim=1)
        flat = weights.reshape(-1, n).to(torch.float32)
        by_row = torch.sparse.mm(self.w_att, flat)  # (B*k, n) or (B*k*H, n): query rows pooled
        if by_row.shape[0] == b * k:
            by_row = by_row.view(b, k, n)
            row_sums = torch.bmm(by_row, key_mask)
            if self.head_max:
                row_sums = torch.cat([row_sums, by_row.sum(dim=2, keepdim=True) - row_sums], dim=2)
            cols = by_row.transpose(1, 2).reshape(b * n, k)
            pooled = torch.sparse.mm(self.w, cols).view(b, k, k).transpose(1, 2)  # [key, query] -> [query, key]
            return pooled, row_sums
        h = by_row.shape[0] // (b * k)
        by_row = by_row.view(b, k, h, n)
        row_sums = torch.matmul(by_row, key_mask[:, None]).squeeze(-1)  # (B, k, H)
        cols = by_row.permute(0, 3, 1, 2).reshape(b * n, k * h)
        pooled = torch.sparse.mm(self.w, cols).view(b, k, k, h)  # [key, query, head]
        return pooled.permute(0, 3, 2, 1), row_sums


class _AttentionPooler:
    """Forward hooks that pool each layer's attention as soon as the layer has run, so only
    one layer's (B x heads x n x n) weights are ever alive."""

    def __init__(self, modules: list[tuple[torch.nn.Module, int]], pooling: _BatchPooling, key_mask: torch.Tensor):
        self.pooling, self.key_mask = pooling, key_mask
        self.pooled: list[torch.Tensor] = []
        self.row_sums: list[torch.Tensor] = []
        self.handles = [m.register_forward_hook(self._make_hook(i)) for m, i in modules]

    def _make_hook(self, index: int):
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            weights = output[index] if isinstance(output, tuple) else None
            if weights is None:
                raise ModelLoadError(
                    f"{type(module).__name__} returned no attention weights: the model must use "
                    f"eager attention"
                )
            pooled, row_sums = self.pooling.attention(weights, self.key_mask)
            self.pooled.append(pooled)
            self.row_sums.append(row_sums)

        return hook

    def check(self, tol: float) -> None:
        """Raise unless every real token's pooled row sums to 1 over real keys in every layer
        (head max: at least 1 over real keys, 0 over padded ones)."""
        sums = torch.stack(self.row_sums)  # (L, B, k, 1 or H), head max (L, B, k, 2)
        if self.pooling.head_max:
            real, padded = sums[..., :1], sums[..., 1:]
            sums = torch.where(real < 1.0, real, 1.0 + padded.abs())  # a max row of softmax rows sums to >= 1
        err = ((sums - 1.0).abs() * self.pooling.valid).amax(dim=(1, 2, 3))
        worst = int(err.argmax())
        if not float(err[worst]) <= tol:
            raise ModelLoadError(
                f"attention rows of layer {worst} do not sum to 1 over unpadded keys (max error "
                f"{float(err[worst]):.2g}): the model's attention output is not softmax weights"
            )

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
            f"{type(model).__name__} does not declare its attention modules; codeprobe cannot "
            f"capture its attention"
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
        it = iter(snippets)
        windows = iter(lambda: list(islice(it, self.batch_size * self.bucket_batches)), [])
        # Tokenise and align the next window while the model runs on this one.
        for prepared in prefetched(windows, self._prepare):
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
                    out.append(_Prepared(s, al, n_full, [], rows[:0], "skipped", vec_al,
                                         None if vec_al is None else vec_rows[:0]))
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
        n, k_max, b = max(lengths), max(int(p.rows.shape[0]) for p in run), len(run)

        input_ids = np.full((b, n), lm.pad_id, dtype=np.int64)
        mask = np.zeros((b, n), dtype=np.int64)
        for i, p in enumerate(run):
            input_ids[i, : lengths[i]] = prefix + p.ids + suffix
            mask[i, : lengths[i]] = 1

        device = lm.device
        pooling = _BatchPooling.build(
            *_entries([(p.alignment, p.rows) for p in run], len(prefix)),
            b, k_max, n, lm.info.n_heads, self.heads, self.attention, device
        )
        vector_pooling = pooling
        if self.vectors and any(p.vector_alignment is not None for p in run):
            kv_max = max(1, *(int(p.vector_pairs[1].shape[0]) for p in run))
            vector_pooling = _BatchPooling.build(
                *_entries([p.vector_pairs for p in run], len(prefix)),
                b, kv_max, n, lm.info.n_heads, "mean", False, device
            )
        mask_t = torch.from_numpy(mask).to(device)
        pooler = None
        if self.attention:
            key_mask = mask_t.to(torch.float32)[:, :, None]
            pooler = _AttentionPooler(self._attention_modules, pooling, key_mask)
        try:
            out = lm.model(
                input_ids=torch.from_numpy(input_ids).to(device),
                attention_mask=mask_t,
                output_hidden_states=self.vectors,
                return_dict=True,
            )
        finally:
            if pooler is not None:
                pooler.remove()

        attention = vectors = None
        if pooler is not None:
            if len(pooler.pooled) != lm.info.n_layers:
                raise ModelLoadError(
                    f"captured attention of {len(pooler.pooled)} layers, expected {lm.info.n_layers}"
                )
            if self.check_attention:
                pooler.check(1e-3 if lm.info.dtype == "float32" else 5e-2)  # half precision rounds
            attention = torch.stack(pooler.pooled, dim=1).cpu().numpy()  # (B, L, [H,] k, k)
        if self.vectors:
            layers = [vector_pooling.vectors(h) for h in out.hidden_states]
            vectors = torch.stack(layers, dim=1).cpu().numpy()  # (B, L + 1, k, hidden)

        pooled = {}
        for i, p in enumerate(run):
            k = int(p.rows.shape[0])
            att = np.ascontiguousarray(attention[i, ..., :k, :k]) if attention is not None else None
            kv = int(p.vector_pairs[1].shape[0])
            vec = np.ascontiguousarray(vectors[i, :, :kv]) if vectors is not None else None
            pooled[id(p)] = (att, vec)
        return pooled


def _entries(pairs: list[tuple[Alignment, np.ndarray]], offset: int) -> tuple[np.ndarray, ...]:
    """A batch's pooling entries (snippet, token row, input position, 1/|S_i|) from each
    snippet's alignment and kept rows; positions shifted past `offset` prefix specials.
    Truncation keeps only whole tokens, so every pair of a kept row is inside the input."""
    entries = []
    for i, (al, rows) in enumerate(pairs):
        keep = np.zeros(al.n_kept, dtype=bool)
        keep[rows] = True
        row_of = np.cumsum(keep) - 1
        sel = keep[al.pair_token]
        pos = offset + al.pair_subword[sel]
        entries.append((np.full(pos.shape[0], i), row_of[al.pair_token[sel]], pos, al.weights[sel]))
    return tuple(np.concatenate(parts) for parts in zip(*entries))

"""Per-layer token attention and per-hidden-state token hidden states of a model, aligned to
code tokens.

One forward pass per batch gives every layer. Attention is pooled inside forward hooks on the
attention modules, so at most one layer's (batch x heads x n x n) weights exist at a time;
nothing is kept across batches, so peak memory does not grow with the number of snippets.
The pooling itself (`codeprobe.model.pooling`) runs compiled per-snippet loops when the model is
on the CPU and torch sparse products on other devices; both give the same numbers.

Token attention (CAT-probing step 3): mean over heads, then the block mean over subword pairs,
W A W^T; special tokens drop out because W has no column weight on them; rows are not
renormalised. `heads="max"` takes the maximum over heads instead, before the block mean, as the
CAT-probing reference code offers (arXiv 2210.04633; its `action_per_head`). Token hidden
states (AST-Probe): mean of the token's subwords' hidden states, W H.

The inputs in and results out are `codeprobe.model.model_io`'s; how inputs are tokenised,
aligned and batched, `codeprobe.model.batching`'s; the attention hooks,
`codeprobe.model.attention_hooks`'s.

Under glibc, the peak RSS of any long torch loop (a bare forward pass too) creeps up by about a
tenth over thousands of batches as the heap fragments. `codeprobe.allocator.limit_heap_growth`
(called by codeprobe's entry points) sets the allocator to reuse freed memory, and the extractor
hands the free pages back between windows (`release_free_memory`), which keeps it flat without
the kernel zero-filling every batch's activations again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from codeprobe.allocator import release_free_memory
from codeprobe.errors import InputError, ModelLoadError
from codeprobe.interrupt import check_interrupted
from codeprobe.model.attention_hooks import AttentionHooks, attention_modules
from codeprobe.model.batching import Prepared, batches, padded_inputs, prepare
from codeprobe.model.loading import LoadedModel, ModelInfo, load_model
from codeprobe.model.model_io import ModelInput, SnippetResult
from codeprobe.model.pooling import KernelPooling, Members, SparsePooling
from codeprobe.prefetch import prefetched, windows

LENGTH_POLICIES = ("truncate", "skip")
POOLINGS = ("auto", "kernels", "sparse")
HEAD_MODES = ("mean", "max", "all")


class Extractor:
    """Extract per-layer token attention and per-hidden-state token hidden states of code
    snippets.

    Args:
        model: a LoadedModel, or a name / path / None (packaged default) to load with
            `device` and `dtype`.
        batch_size: snippets per forward pass (right-padded, masked).
        device, dtype: only when `model` is a name (the LoadedModel fixes its own).
        heads: "mean" (head-mean attention), "max" (maximum over heads of the subword
            attention, then the block mean; CAT-probing's reference offers it) or "all"
            (per head).
        attention, hidden_states: which outputs to compute (skip one to save work).
        length_policy: for snippets longer than the model takes: "truncate" (cut at a code-token
            boundary, as CAT-probing truncates) or "skip" (AST-Probe drops snippets that do not
            fit). A sliding window is not offered: CAT-probing needs attention between every
            token pair, which does not exist across windows, and hidden states from different windows
            would mix contexts within one snippet; neither paper used one.
        max_subwords: lower limit than the model's on input length (specials included), e.g.
            CAT-probing's 256; the limit in use, the lower of the two
            (`LoadedModel.input_limit`), is the attribute `max_subwords`.
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
        hidden_states: bool = True,
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
        if not (attention or hidden_states):
            raise InputError("nothing to extract: attention and hidden_states are both off")
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
        limit = self.loaded.input_limit(max_subwords)
        self.batch_size = batch_size
        self.bucket_batches = bucket_batches
        self.heads = heads
        self.attention = attention
        self.hidden_states = hidden_states
        self.length_policy = length_policy
        self.max_subwords = limit
        self.check_attention = check_attention
        on_cpu = torch.device(self.loaded.device).type == "cpu"
        self._kernels = pooling == "kernels" or (pooling == "auto" and on_cpu)
        self.prefetch = not on_cpu if prefetch is None else bool(prefetch)
        self._attention_modules = attention_modules(self.loaded.model) if attention else []
        if attention and len(self._attention_modules) != info.n_layers:
            raise ModelLoadError(
                f"{info.architecture}: found {len(self._attention_modules)} attention modules for "
                f"{info.n_layers} layers"
            )

    @property
    def info(self) -> ModelInfo:
        """Provenance of the model; record it with every result."""
        return self.loaded.info

    def extract(self, inputs: Iterable[ModelInput]) -> Iterator[SnippetResult]:
        """Results for `inputs`, one per input, in order; lazily, batch by batch.

        Raises:
            InputError: an item that is not a ModelInput.
            AlignmentError: token spans out of range or out of order.
            ModelLoadError: the model returned no usable attention weights.
        """
        # Tokenise and align the next window while the model runs on this one.
        chunks = windows(inputs, self.batch_size, self.batch_size * self.bucket_batches)
        for prepared in prefetched(chunks, self._prepare) if self.prefetch else map(self._prepare, chunks):
            # Inference mode only around the window: a `with` spanning the `yield` would leak it
            # into the caller's code between items.
            with torch.inference_mode():
                results = self._run(prepared)
            release_free_memory()  # the window's activations, freed: resident size stays flat
            yield from results

    def _prepare(self, chunk: Sequence[ModelInput]) -> list[Prepared]:
        budget = self.max_subwords - len(self.loaded.prefix_ids) - len(self.loaded.suffix_ids)
        return prepare(chunk, self.loaded.tokenizer, budget, self.length_policy, self.hidden_states)

    def _run(self, prepared: list[Prepared]) -> list[SnippetResult]:
        pooled = {}
        for batch in batches(prepared, self.batch_size):
            check_interrupted()  # Ctrl-C / SIGTERM stop a step's thread within a batch
            pooled.update(self._forward(batch))
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
        hs = np.zeros((info.n_layers + 1, 0, info.hidden_size), np.float32) if self.hidden_states else None
        return att, hs

    def _forward(self, run: list[Prepared]) -> dict[int, tuple[np.ndarray | None, np.ndarray | None]]:
        """Pool one batch; returns {id(prepared): (attention, hidden states)}."""
        lm = self.loaded
        prefix = list(lm.prefix_ids)
        input_ids, mask, lengths = padded_inputs(run, prefix, list(lm.suffix_ids), lm.pad_id)
        device = lm.device
        info = lm.info
        att_members = [Members.of(p.alignment, p.rows, len(prefix)) for p in run] if self.attention else None
        hs_members = None
        if self.hidden_states:
            own = any(p.hidden_state_alignment is not None for p in run)
            hs_members = (
                [Members.of(*p.hidden_state_pairs, len(prefix)) for p in run]
                if own or not self.attention
                else att_members
            )
        args = (att_members, hs_members, lengths, info.n_layers, info.n_heads, info.hidden_size, self.heads)
        pooling = KernelPooling(*args) if self._kernels else SparsePooling(*args, device)
        hooks = AttentionHooks(self._attention_modules, pooling) if self.attention else None
        try:
            out = lm.model(
                input_ids=torch.from_numpy(input_ids).to(device),
                attention_mask=torch.from_numpy(mask).to(device),
                output_hidden_states=self.hidden_states,
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
        if self.hidden_states:
            pooling.pool_hidden_states(out.hidden_states)
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

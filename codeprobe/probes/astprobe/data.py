"""From code to probe inputs: parse, extract the gold tuples, and cache the token hidden states.

`prepare_split` turns a list of snippets of one language into a `ProbeSplit`: the snippets that
parse cleanly, have at least two code tokens and fit the model whole, their gold (d, c, u), and
a `HiddenStateCache` with every hidden state's token hidden states. `ProbeSplit.data(h)` is then
all a fit or an evaluation at hidden state h (0 = embeddings) needs.

A token's hidden state is the mean of its subwords' hidden states, computed by default on the real
source text (aligned by character offsets); `model_input="code_tokens"` feeds the reference's
re-spaced token string instead (still aligned by offsets). `remove_docstrings` and
`drop_line_continuations` apply the reference's preprocessing (see `preprocess`, `tuples`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from codeprobe.errors import InputError
from codeprobe.model import Extractor, ModelInput
from codeprobe.probes.astprobe.cache import HiddenStateCache, cached_hidden_states
from codeprobe.probes.astprobe.preprocess import remove_docstrings as strip_docstrings
from codeprobe.probes.astprobe.probe_data import ProbeData
from codeprobe.probes.astprobe.tuple_batch import TupleBatch
from codeprobe.probes.astprobe.tuples import ASTTuple, tree_tuple, tuple_tokens
from codeprobe.probes.astprobe.vocab import LabelVocab
from codeprobe.syntax import parse
from codeprobe.syntax.languages import canonical_language

MIN_TOKENS = 2
MODEL_INPUTS = ("source", "code_tokens")


@dataclass(frozen=True, eq=False)
class ProbeSplit:
    """Snippets of one language ready for probing.

    Attributes:
        language: canonical language name.
        ids, codes: the kept snippets, in cache order; `codes` are the texts the tuples' token
            spans index (after `remove_docstrings`, the rewritten text).
        tuples: their gold (d, c, u).
        cache: their token hidden states, every hidden state.
        dropped: count of snippets left out, per reason ("parse_error", "too_few_tokens",
            "does_not_fit_model").
        options: the switches that made it (`remove_docstrings`, `drop_line_continuations`,
            `model_input`).
    """

    language: str
    ids: tuple[str, ...]
    codes: tuple[str, ...]
    tuples: tuple[ASTTuple, ...]
    cache: HiddenStateCache
    dropped: dict[str, int] = field(default_factory=dict)
    options: dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def gold(self) -> TupleBatch:
        return TupleBatch.from_tuples(self.tuples)

    def data(self, hidden_state: int) -> ProbeData:
        """Inputs of a fit or an evaluation at `hidden_state` (0 = embeddings), memory-mapped."""
        return ProbeData(self.cache.hidden_state(hidden_state), self.gold, self.language)

    def check(self, language: str, options: dict[str, object], hidden_state: int) -> None:
        """Raise InputError unless this split is in `language`, was made with the switches
        `options`, and holds `hidden_state`."""
        if self.language != language:
            raise InputError(f"this probe is for {language}, the split is {self.language}")
        differ = sorted(k for k, v in self.options.items() if k in options and options[k] != v)
        if differ:
            raise InputError(
                f"the split was prepared with other {', '.join(differ)} than this probe's: "
                "prepare it with the probe's `prepare`"
            )
        if not 0 <= hidden_state < self.cache.n_states:
            raise InputError(
                f"hidden state {hidden_state} does not exist: the model has hidden states 0..{self.cache.n_states - 1}"
            )
        if hidden_state not in self.cache.stored:
            raise InputError(
                f"hidden state {hidden_state} is not in the split's cache (it holds {list(self.cache.stored)}): "
                "prepare the split with `hidden_states` that include it"
            )


def split_vocabs(split: ProbeSplit) -> tuple[LabelVocab, LabelVocab]:
    """The (c, u) label vocabularies a probe trained on `split` has (`LabelVocab.build`)."""
    return LabelVocab.build(t.c for t in split.tuples), LabelVocab.build(t.u for t in split.tuples)


def as_pairs(snippets: Iterable) -> list[tuple[str, str]]:
    """(id, code) pairs from code strings, (id, code) pairs, or objects with `.id` and `.code`
    (e.g. `codeprobe.datasets.Snippet`); plain strings get ids "0", "1", ..."""
    out = []
    for k, s in enumerate(snippets):
        if isinstance(s, str):
            out.append((str(k), s))
        elif isinstance(s, tuple) and len(s) == 2:
            out.append((str(s[0]), str(s[1])))
        elif hasattr(s, "code") and hasattr(s, "id"):
            out.append((str(s.id), s.code))
        else:
            raise InputError(f"cannot use {type(s).__name__} as a snippet: give code, (id, code) or a Snippet")
    if len({i for i, _ in out}) != len(out):
        raise InputError("snippet ids must be unique")
    return out


def holdout(
    pairs: list[tuple[str, str]], fraction: float, seed: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(kept, held out) of `pairs`: a seeded random share `fraction` (at least one) held out,
    both in their order.

    Raises:
        InputError: nothing would be left to keep.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pairs))
    n_valid = max(1, int(round(fraction * len(pairs))))
    if len(pairs) - n_valid < 1:
        raise InputError("too few snippets to hold out a validation share: pass X_valid")
    return [pairs[i] for i in sorted(order[n_valid:])], [pairs[i] for i in sorted(order[:n_valid])]


def prepare_split(
    snippets: Iterable,
    language: str,
    extractor: Extractor,
    cache_root: str | os.PathLike,
    *,
    model_label: str | None = None,
    remove_docstrings: bool = False,
    drop_line_continuations: bool = False,
    model_input: str = "source",
    reuse: Sequence[HiddenStateCache] = (),
    hidden_states: Sequence[int] | None = None,
) -> ProbeSplit:
    """Parse, extract gold tuples, and encode (or reopen the cache of) one split.

    Args:
        snippets: see `as_pairs`.
        language: their language.
        extractor: hidden states on; its length policy should be "skip".
        cache_root: directory holding hidden-state caches; this split's lives in a subdirectory
            named by a fingerprint of the model and the snippets, so reruns reuse it.
        model_label: recorded with the cache (e.g. "random weights", which changes the
            fingerprint so that it does not collide with the real model's cache).
        remove_docstrings: rewrite each snippet as the reference's preprocessing does before
            parsing (docstrings, comments, line continuations and blank lines go; see
            `preprocess.remove_docstrings`); the model reads the rewritten text. Python code its
            tokenizer rejects, or that no longer parses, counts as "parse_error".
        drop_line_continuations: leave `line_continuation` leaves out of the tuples (see
            `tuples.tree_tuple`).
        model_input: "source" (the snippet's text) or "code_tokens" (the tuple's tokens joined
            by single spaces, as the reference fed its models).
        reuse: caches of the same model to copy hidden states from (see `cached_hidden_states`), e.g. the
            stores CAT-probing's forward pass wrote.
        hidden_states: the hidden states to cache (0 = embeddings; None: all); `data` reads
            only these.

    Raises:
        InputError: an unknown `model_input`, or snippets that are not snippets.
    """
    if model_input not in MODEL_INPUTS:
        raise InputError(f"model_input must be one of {', '.join(MODEL_INPUTS)}, got {model_input!r}")
    language = canonical_language(language)
    pairs = as_pairs(snippets)
    dropped: Counter[str] = Counter()
    kept: list[tuple[str, str, ASTTuple]] = []
    for ident, code in pairs:
        try:
            if remove_docstrings:
                code = strip_docstrings(code, language)
            tree = parse(code, language)
        except InputError:
            dropped["parse_error"] += 1
            continue
        if tree.has_errors:
            dropped["parse_error"] += 1
            continue
        n_tokens = len(tuple_tokens(tree, drop_line_continuations=drop_line_continuations))
        if n_tokens < MIN_TOKENS:
            dropped["too_few_tokens"] += 1
            continue
        kept.append((ident, code, tree_tuple(tree, drop_line_continuations=drop_line_continuations)))
    items = [_model_input(i, c, t, model_input) for i, c, t in kept]
    cache = cached_hidden_states(
        cache_root, items, extractor, model_label=model_label, reuse=reuse, hidden_states=hidden_states
    )
    by_id = {i: (c, t) for i, c, t in kept}
    if cache.skipped:
        dropped["does_not_fit_model"] += len(cache.skipped)
    lengths = np.array([by_id[i][1].n_tokens for i in cache.ids], dtype=np.int64)
    if not np.array_equal(lengths, cache.lengths):
        raise InputError(f"the hidden-state cache in {cache.path} does not match its snippets")
    return ProbeSplit(
        language=language,
        ids=cache.ids,
        codes=tuple(by_id[i][0] for i in cache.ids),
        tuples=tuple(by_id[i][1] for i in cache.ids),
        cache=cache,
        dropped=dict(dropped),
        options={
            "remove_docstrings": remove_docstrings,
            "drop_line_continuations": drop_line_continuations,
            "model_input": model_input,
        },
    )


def _model_input(ident: str, code: str, t: ASTTuple, model_input: str) -> ModelInput:
    """What the model reads for one snippet, with the tuple tokens' spans in that text."""
    if model_input == "code_tokens":
        return ModelInput.joined(ident, t.tokens.texts)
    return ModelInput.from_tokens(ident, code, t.tokens)


def ensure_nonempty(splits: Sequence[ProbeSplit], names: Sequence[str]) -> None:
    """Raise a clear error if a split has no usable snippet."""
    for split, name in zip(splits, names):
        if len(split) == 0:
            raise InputError(f"the {name} split has no usable snippet (dropped: {split.dropped})")

"""CAT-probing of a model on code snippets: parse, extract attention, measure distances, score.

    probe = CATProbe(types="paper", distance="uast", quantile=0.75)
    result = probe.score(snippets, model=None, language="python")   # None: the packaged model
    print(result.summary.format())
    result.to_parquet("cat.parquet")

Per snippet (spec "Pipeline"): the whole function is parsed (the AST covers it all); the model
sees it cut at a code-token boundary to `max_subwords` (256, specials included, as the paper);
one forward pass gives the token attention of every layer; D is the U-AST (or AST) distance
over all code tokens, restricted to the tokens the model saw.

Two switches follow the reference code (arXiv 2210.04633) where it differs from this default:
`model_input="code_tokens"` feeds the code tokens joined by single spaces (whitespace inside a
token collapsed), as the reference fed CodeSearchNet's `code_tokens`, instead of the source text;
`head_pooling="max"` takes the maximum over heads of the subword attention instead of the mean.
Either way subwords are aligned to tokens by character offsets in the text the model saw.

A decoder's query attends only to itself and earlier tokens, so `mask="auto"` (default) scores
a decoder over the pairs that can exist (key j <= query i) and any other model over the full
matrix, the paper's convention; "causal" and "full" force one (docs/cat.md). Special tokens a
tokenizer adds (an encoder's <s> ... </s>, a decoder's BOS, often an attention sink; or none,
as GPT-2's and StarCoder's tokenizers add) get no code token, so they drop out of the token
attention either way.

`CATProbe` follows scikit-learn's estimator contract (`sklearn.base.BaseEstimator`), as
`ASTProbe` does: `__init__` stores its arguments as given and checks nothing, `score` (and
`inputs`, `extractor`, `score_inputs`) check them, `get_params`, `set_params` and
`sklearn.base.clone` work. The model is `score`'s argument, not a constructor parameter (as it is
`ASTProbe.fit`'s): `clone` deep-copies constructor parameters, and a transformer is hundreds of
megabytes to copy; and the same settings apply to any model: the model is what the probe
measures, not one of its settings.
"""

from __future__ import annotations

import importlib.metadata
import numbers
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from codeprobe import __version__
from codeprobe.errors import CodeprobeError, InputError
from codeprobe.prefetch import prefetched, windows
from codeprobe.probes.cat.dataset import CATSample, SkippedSample, score_samples
from codeprobe.probes.cat.results import CATResult
from codeprobe.probes.cat.score import DEFAULT_QUANTILE, check_mask, check_quantile, resolve_mask
from codeprobe.probes.cat.types import DEFAULT_TOP_K, STRATEGIES, check_strategy
from codeprobe.progress import progress
from codeprobe.syntax import ast_distance, grammar_info, parse, uast_distance
from codeprobe.syntax.languages import canonical_language

DISTANCES = {"uast": uast_distance, "ast": ast_distance}
MODEL_INPUTS = ("source", "code_tokens")
HEAD_POOLINGS = ("mean", "max")
DEFAULT_MAX_SUBWORDS = 256  # the paper's input limit, special tokens included

# Why a snippet produced no sample (the reasons of codeprobe.datasets where they overlap).
SKIP_PARSE_ERROR = "parse_error"  # ERROR or MISSING nodes (unless allow_parse_errors)
SKIP_NO_ALIGNED_TOKENS = "no_aligned_tokens"  # no code token got a subword
SKIP_TOO_LONG = "too_long"  # over max_subwords under the "skip" length policy


@dataclass(frozen=True)
class SnippetInputs:
    """Everything CAT-probing computed for one snippet: the sample to score plus what a report
    or a plot shows. `labels` are the texts of the sample's tokens.

    With `CATProbe(hidden_state_tokens=...)`, `hidden_states` holds float32 (n_layers + 1, m,
    hidden), every hidden state (0 = embeddings) pooled over the m tokens in
    `hidden_state_spans` ((m,) start and end offsets in `code`), from the same forward pass;
    None when the snippet was not read whole or one of those tokens got no subword (a probe of
    hidden states needs every token of the whole snippet).

    `tokens` are all the snippet's code tokens (`sample.positions` index them): what a method
    that reads the same attention needs of the syntax (e.g. relation edges).
    """

    sample: CATSample
    labels: tuple[str, ...]
    status: str  # "ok" or "truncated" (the extractor's)
    n_subwords: int
    n_unmatched_subwords: int
    n_tokens_without_subword: int
    n_shared_subwords: int
    code: str = ""
    hidden_state_spans: tuple[np.ndarray, np.ndarray] | None = None
    hidden_states: np.ndarray | None = None
    tokens: Any = None


def _items(snippets: Iterable[Any], language: str | None) -> tuple[str, Iterator[tuple[str, str]]]:
    """(language, stream of (id, code)) from code strings, (id, code) pairs, or objects with .id
    and .code (and optionally .language, e.g. codeprobe.datasets.Snippet). A CAT-score is per
    language: every snippet must be in `language` (default: the first snippet's)."""

    def tagged() -> Iterator[tuple[str, str, str | None]]:
        for k, item in enumerate(snippets):
            if isinstance(item, str):
                yield str(k), item, None
            elif isinstance(item, tuple) and len(item) == 2:
                yield str(item[0]), item[1], None
            elif hasattr(item, "code") and hasattr(item, "id"):
                yield str(item.id), item.code, getattr(item, "language", None)
            else:
                raise InputError(
                    f"snippet {k}: expected code, an (id, code) pair or a Snippet, got {type(item).__name__}"
                )

    it = tagged()
    first = next(it, None)
    if first is None:
        raise InputError("no snippets to probe")
    lang = language or first[2]
    if lang is None:
        raise InputError("no language given: pass language= (or snippets that carry one)")
    lang = canonical_language(lang)

    def checked() -> Iterator[tuple[str, str]]:
        for ident, code, own in chain([first], it):
            if own is not None and canonical_language(own) != lang:
                raise InputError(f"snippet {ident} is {own}, not {lang}: score one language at a time")
            yield ident, code

    return lang, checked()


def _progress(items: Iterator[tuple[str, str]], snippets: Iterable[Any]) -> Iterator[tuple[str, str]]:
    total = len(snippets) if hasattr(snippets, "__len__") else None
    return progress(items, total=total, desc="CAT-probing", unit="snippet")


class CATProbe(BaseEstimator):
    """CAT-probing with the paper's semantics (see shared/specs/cat-probing.md), a scikit-learn
    estimator (see the module doc).

    Args:
        types: frequent-type strategy: "paper" (the per-language lists), "topk" (top_k
            eligible types by rate, per layer, over the scored snippets) or "all".
        distance: "uast" (the paper's) or "ast" (plain tree distance).
        quantile: q; thresholds are the q-quantile of A and the (1 - q)-quantile of D.
        random_state: seed of the random-attention baseline.
        per_head: also score every head (rows with head = 0..H-1 beside the head mean, -1).
        model_input: what the model reads: "source" (the snippet's text, default) or
            "code_tokens" (the code tokens joined by single spaces, whitespace inside a token
            collapsed: the reference's input; layout, comments and blank lines are gone).
        head_pooling: how a layer's heads become one attention matrix before the block mean:
            "mean" (default, the spec's) or "max" (the reference's other choice); rows with
            head = -1 then hold the head maximum. Not with per_head.
        mask: which cells of the attention and distance matrices are scored (thresholds, M_D
            and the overlap alike, for the baselines too): "full" (all n^2, the paper's),
            "causal" (the pairs key j <= query i, all a decoder's query can attend to) or
            "auto" (default: causal for a decoder, full otherwise; `resolved_mask`).
        top_k: k of "topk".
        max_subwords: model input limit, special tokens included (cut at a token boundary).
        batch_size: snippets per forward pass.
        allow_parse_errors: score snippets whose tree has ERROR/MISSING nodes (default: skip).
        spill_dir: where "topk" keeps its temporary file (default: the system's temp dir).
        hidden_state_tokens: tree -> tokens (e.g. AST-Probe's `tuple_tokens`): the same forward
            pass also pools every hidden state over these tokens (`SnippetInputs.hidden_states`),
            so that one pass serves a probe of hidden states too. Needs model_input="source".

    The arguments are stored as given and checked when the probe runs: a bad one raises
    `InputError` there.
    """

    def __init__(
        self,
        types: str = "paper",
        distance: str = "uast",
        quantile: float = DEFAULT_QUANTILE,
        random_state: int = 0,
        per_head: bool = False,
        *,
        model_input: str = "source",
        head_pooling: str = "mean",
        mask: str = "auto",
        top_k: int = DEFAULT_TOP_K,
        max_subwords: int = DEFAULT_MAX_SUBWORDS,
        batch_size: int = 16,
        allow_parse_errors: bool = False,
        spill_dir: str | None = None,
        hidden_state_tokens: Callable[[Any], Any] | None = None,
    ):
        self.types = types
        self.distance = distance
        self.quantile = quantile
        self.random_state = random_state
        self.per_head = per_head
        self.model_input = model_input
        self.head_pooling = head_pooling
        self.mask = mask
        self.top_k = top_k
        self.max_subwords = max_subwords
        self.batch_size = batch_size
        self.allow_parse_errors = allow_parse_errors
        self.spill_dir = spill_dir
        self.hidden_state_tokens = hidden_state_tokens

    def _check_params(self) -> None:
        """Check the settings (scikit-learn checks them when the estimator runs, not in
        `__init__`); whether `paper` has a list for the language: in `score`."""
        if self.types not in STRATEGIES:
            raise InputError(f"unknown type strategy {self.types!r}; choose one of {', '.join(STRATEGIES)}")
        if self.distance not in DISTANCES:
            raise InputError(f"distance must be one of {', '.join(DISTANCES)}, got {self.distance!r}")
        check_quantile(self.quantile)
        check_mask(self.mask)
        for name in ("random_state", "top_k", "max_subwords", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise InputError(f"{name} must be an integer, got {value!r}")
        if self.top_k < 1:
            raise InputError(f"top_k must be >= 1, got {self.top_k}")
        if self.model_input not in MODEL_INPUTS:
            raise InputError(f"model_input must be one of {', '.join(MODEL_INPUTS)}, got {self.model_input!r}")
        if self.head_pooling not in HEAD_POOLINGS:
            raise InputError(f"head_pooling must be one of {', '.join(HEAD_POOLINGS)}, got {self.head_pooling!r}")
        if self.hidden_state_tokens is not None and self.model_input != "source":
            raise InputError(
                "hidden_state_tokens pools the hidden states of the source text; it needs model_input='source'"
            )
        if self.per_head and self.head_pooling != "mean":
            raise InputError("per_head scores every head beside the head mean; head_pooling='max' needs per_head=False")

    def extractor(self, model: Any = None):
        """A codeprobe.model.Extractor for `model` (a LoadedModel, a name or path, or None for
        the packaged default) with this probe's settings; an Extractor is used as given."""
        from codeprobe.model import Extractor

        self._check_params()
        if isinstance(model, Extractor):
            return model
        return Extractor(
            model,
            batch_size=self.batch_size,
            heads="all" if self.per_head else self.head_pooling,
            hidden_states=self.hidden_state_tokens is not None,
            length_policy="truncate",
            max_subwords=self.max_subwords,
        )

    def inputs(
        self, snippets: Iterable[Any], model: Any = None, language: str | None = None
    ) -> Iterator[SnippetInputs | SkippedSample]:
        """Pass 1 of scoring, as a stream: per snippet, in order, its inputs or why it has none.

        snippets: code strings, (id, code) pairs, or objects with .id, .code (and .language),
            all in one language (`language`, default: the first snippet's).
        model: see `extractor`. One forward pass per batch gives all layers.
        """
        self._check_params()
        lang, items = _items(snippets, language)
        return self._inputs(_progress(items, snippets), lang, self.extractor(model))

    def _inputs(self, items: Iterator[tuple[str, str]], language: str, extractor: Any):
        # Windows as large as the extractor's length buckets (the first one batch, so the model
        # starts early); where the extractor prefetches, the next window is parsed in a
        # background thread while the model runs on this one.
        chunks = windows(items, self.batch_size, self.batch_size * getattr(extractor, "bucket_batches", 1))
        parse = lambda chunk: [self._parse(i, c, language) for i, c in chunk]  # noqa: E731
        for parsed in prefetched(chunks, parse) if getattr(extractor, "prefetch", True) else map(parse, chunks):
            runnable = {k: x for k, x in enumerate(parsed) if not isinstance(x, SkippedSample)}
            results = extractor.extract([self._model_input(k, x[1], x[2]) for k, x in runnable.items()])
            by_index = {r.id: r for r in results}
            for k, x in enumerate(parsed):
                if isinstance(x, SkippedSample):
                    yield x
                    continue
                ident, tokens, hidden_state_tokens = x
                r = by_index[k]
                if r.status == "skipped":
                    yield SkippedSample(ident, SKIP_TOO_LONG)
                    continue
                if r.tokens.size == 0:
                    yield SkippedSample(ident, SKIP_NO_ALIGNED_TOKENS)
                    continue
                kept = r.tokens
                try:  # between the aligned tokens only: a long file cut at the model's input
                    d = DISTANCES[self.distance](tokens, among=kept)  # limit costs what its prefix costs
                except CodeprobeError as err:
                    yield SkippedSample(ident, type(err).__name__)
                    continue
                yield SnippetInputs(
                    sample=CATSample(ident, tuple(tokens.types[i] for i in kept), kept, d, r.attention),
                    labels=tuple(tokens.texts[i] for i in kept),
                    status=r.status,
                    n_subwords=r.n_subwords,
                    n_unmatched_subwords=r.n_unmatched_subwords,
                    n_tokens_without_subword=r.n_tokens_without_subword,
                    n_shared_subwords=r.n_shared_subwords,
                    tokens=tokens,
                    **self._hidden_states(tokens.tree.code, hidden_state_tokens, r),
                )

    def _parse(self, ident: str, code: str, language: str):
        """(id, code tokens, hidden-state tokens or None), or why the snippet is skipped."""
        try:
            tree = parse(code, language)
        except CodeprobeError as err:  # empty, binary, ...: this snippet only
            return SkippedSample(ident, type(err).__name__)
        if tree.issues and not self.allow_parse_errors:
            return SkippedSample(ident, SKIP_PARSE_ERROR)
        tokens = tree.tokens()
        hidden_state_tokens = self.hidden_state_tokens(tree) if self.hidden_state_tokens is not None else None
        return ident, tokens, hidden_state_tokens

    def _model_input(self, key: int, tokens: Any, hidden_state_tokens: Any):
        """What the model reads for one snippet, with the tokens' spans in that text."""
        from codeprobe.model import ModelInput

        if self.model_input == "code_tokens":
            return ModelInput.joined(key, tokens.texts, collapse_whitespace=True)
        model_input = ModelInput.from_tokens(key, tokens.tree.code, tokens)
        if hidden_state_tokens is None:
            return model_input
        return model_input.with_hidden_state_tokens(hidden_state_tokens)

    @staticmethod
    def _hidden_states(code: str, hidden_state_tokens: Any, result: Any) -> dict[str, Any]:
        """The SnippetInputs fields of the hidden-state tokens (see `SnippetInputs`)."""
        if hidden_state_tokens is None:
            return {}
        spans = (
            np.asarray(hidden_state_tokens.start_char, np.int64),
            np.asarray(hidden_state_tokens.end_char, np.int64),
        )
        whole = result.status == "ok" and result.hidden_state_tokens.shape[0] == spans[0].shape[0]
        return {"code": code, "hidden_state_spans": spans, "hidden_states": result.hidden_states if whole else None}

    def score(self, snippets: Iterable[Any], model: Any = None, language: str | None = None) -> CATResult:
        """CAT-scores of `model` on `snippets` (all in one language): per-sample rows,
        per-layer summary, the type-rate table and the settings (model, grammar, versions).

        snippets: code strings, (id, code) pairs, or objects with .id, .code (and .language).
        model: a LoadedModel, a model directory or cached hub id, None (packaged default), or
            an Extractor.
        Raises InputError on mixed languages, a language without a `paper` list under
        types="paper", when no snippet can be scored, or on a bad setting.
        """
        self._check_params()
        lang, items = _items(snippets, language)
        check_strategy(self.types, lang)
        extractor = self.extractor(model)
        return self.score_inputs(self._inputs(_progress(items, snippets), lang, extractor), lang, extractor)

    def resolved_mask(self, extractor: Any) -> str:
        """The convention this probe scores `extractor`'s model with: `mask`, "auto" resolved by
        the model's kind (causal for a decoder, full otherwise)."""
        self._check_params()
        return resolve_mask(self.mask, extractor.info.kind)

    def score_inputs(self, inputs: Iterable[SnippetInputs | SkippedSample], language: str, extractor: Any) -> CATResult:
        """Score what `inputs` produced (streamed once; `topk` spills it for a second pass)."""
        self._check_params()
        return score_samples(
            (x if isinstance(x, SkippedSample) else x.sample for x in inputs),
            language=language,
            types=self.types,
            quantile=check_quantile(self.quantile),
            top_k=int(self.top_k),
            random_state=int(self.random_state),
            mask=self.resolved_mask(extractor),
            settings=self.settings(extractor, language),
            spill_dir=self.spill_dir,
        )

    def settings(self, extractor: Any, language: str) -> dict[str, Any]:
        """JSON-able record of how results were made: the probe's settings, model provenance,
        grammar and library versions."""
        grammar = grammar_info(language)
        return {
            "distance": self.distance,
            "per_head": bool(self.per_head),
            "model_input": self.model_input,
            # An Extractor given as the model brings its own head pooling.
            "head_pooling": {"all": "mean"}.get(extractor.heads, extractor.heads),
            "max_subwords": extractor.max_subwords,
            "allow_parse_errors": bool(self.allow_parse_errors),
            "model": extractor.info.as_dict(),
            "grammar": {"package": grammar.package, "version": grammar.package_version},
            "versions": {
                "codeprobe": __version__,
                "numpy": np.__version__,
                "tree-sitter": importlib.metadata.version("tree-sitter"),
            },
        }

"""`ASTProbe`: AST-Probe as a scikit-learn estimator (fit, predict, score; save, load).

    probe = ASTProbe(rank=128, hidden_state=3, language="python").fit(train_codes, model="path/to/model")
    probe.score(test_codes)            # mean F1 of the recovered trees
    trees = probe.predict(["def f(a): return a"])
    probe.save("runs/probe"); ASTProbe.load("runs/probe")
    sklearn.base.clone(probe)          # the same settings, unfitted

Inputs are code strings, (id, code) pairs or `codeprobe.datasets.Snippet`s. The model runs once
per snippet; its token hidden states are cached on disk (see `cache`), so refitting at another
hidden state or rank, or scoring the same snippets again, never re-runs it.

`hidden_state` is the index into the model's hidden states (0 = the embeddings, h >= 1 = the
output of the h-th transformer layer), never a transformer layer itself: codeprobe says `layer`
only for a transformer block (CAT-probing's layers, 0-based).

The contract is scikit-learn's (`sklearn.base.BaseEstimator`), as `CATProbe`'s: `__init__`
stores its arguments as given, under the same names, and checks nothing; `fit` checks them;
`get_params`, `set_params` and `clone` work; what `fit` learns ends in `_` (`module_`, `vocabs_`,
`language_`, `model_`, `model_info_`, `fit_result_`).

The model is not a constructor argument but `fit`'s `model=` (as it is `CATProbe.score`'s), kept
as the fitted `model_` that `predict` and `score` read new snippets with. Why: `clone` deep-copies
every constructor argument, and a transformer is hundreds of megabytes to copy for each clone of
a grid search; and the probe's weights are learned from that one model's hidden states, so which
model it reads is part of what `fit` learns, not a setting to vary. `load(path, model=...)` gives
the fitted model back (default: the one `save` recorded).

What `predict` gives is `recovered_tree`'s; the files `save` writes are `probe_files`'s.
"""

from __future__ import annotations

import os
from pathlib import Path

from sklearn.base import BaseEstimator

from codeprobe.errors import InputError
from codeprobe.model import Extractor, LoadedModel, load_model
from codeprobe.probes.astprobe.cache import default_cache_dir
from codeprobe.probes.astprobe.data import ProbeSplit, as_pairs, ensure_nonempty, holdout, prepare_split, split_vocabs
from codeprobe.probes.astprobe.evaluation import ProbeScores, evaluate, predict
from codeprobe.probes.astprobe.fitting import fit
from codeprobe.probes.astprobe.params import check_params
from codeprobe.probes.astprobe.probe import ProbeModule
from codeprobe.probes.astprobe.probe_files import probe_settings, read_probe, write_probe
from codeprobe.probes.astprobe.probe_run import FitResult
from codeprobe.probes.astprobe.recovered_tree import RecoveredTree, recovered_trees
from codeprobe.probes.astprobe.train_config import TrainConfig
from codeprobe.probes.astprobe.tree_scores import LabelRecall, recall_by_label
from codeprobe.probes.astprobe.vocab import LabelVocab

VALIDATION_SEED_SALT = 7919


class ASTProbe(BaseEstimator):
    """AST-Probe on one of a model's hidden states, a scikit-learn estimator (see the module doc).

    Args:
        rank: dimension of the syntactic subspace (the paper: 128; sweeps 8..512).
        hidden_state: index into the model's hidden states (0 = embeddings, h >= 1 = output of
            the h-th transformer layer).
        language: the snippets' language (any name `canonical_language` knows).
        random_state: seeds initialisation, batch order and the validation split.
        config: optimisation settings (default: the spec's).
        validation_fraction: share of `fit`'s snippets held out for early stopping when no
            `X_valid` is given.
        cache_dir: root of the hidden-state caches (None: `default_cache_dir()`).
        device: where the model runs (None: CUDA if available); the probe trains on
            `config.device`.
        extraction_batch_size: snippets per forward pass of the model.
        remove_docstrings: rewrite every snippet as the reference code's preprocessing does
            (Python: docstrings and other line-initial strings, comments, line continuations and
            blank lines removed; other languages: comments) before parsing it and before the
            model reads it. Off by default; see docs/paper-switches.md for its effect.
        drop_line_continuations: leave Python's `line_continuation` leaves (backslash-newline)
            out of the tuples, as the reference's preprocessing does.
        model_input: "source" (the snippet's text, default) or "code_tokens" (the tuple's
            tokens joined by single spaces, as the reference fed its models).

    The arguments are stored as given and checked when the probe runs (`fit`, `prepare`,
    `score`, ...; see `params`): a bad one raises `InputError` there.

    Attributes (after `fit`, `fit_splits`, `from_fit_result` or `load`):
        module_: the trained `ProbeModule` (B, V_c, V_u).
        vocabs_: the (c, u) label vocabularies of the training split.
        language_: the canonical language name.
        model_: the model `fit` was given (a name or directory, a `LoadedModel`, or None for
            the packaged default); `predict`, `score`, `evaluate` and `recall_by_label` read new
            snippets with it.
        model_info_: provenance of the model whose cached hidden states trained the probe.
        fit_result_: how the training went (`FitResult`); None after `load`.
    """

    def __init__(
        self,
        rank: int = 128,
        hidden_state: int = 3,
        *,
        language: str = "python",
        random_state: int = 0,
        config: TrainConfig = TrainConfig(),
        validation_fraction: float = 0.1,
        cache_dir: str | os.PathLike | None = None,
        device: str | None = None,
        extraction_batch_size: int = 16,
        remove_docstrings: bool = False,
        drop_line_continuations: bool = False,
        model_input: str = "source",
    ) -> None:
        self.rank = rank
        self.hidden_state = hidden_state
        self.language = language
        self.random_state = random_state
        self.config = config
        self.validation_fraction = validation_fraction
        self.cache_dir = cache_dir
        self.device = device
        self.extraction_batch_size = extraction_batch_size
        self.remove_docstrings = remove_docstrings
        self.drop_line_continuations = drop_line_continuations
        self.model_input = model_input

    # -- scikit-learn API -------------------------------------------------------------------

    def fit(self, X, X_valid=None, *, model: str | LoadedModel | None = None) -> ASTProbe:
        """Train on snippets `X`; early stopping on `X_valid` (default: a held-out share of X).

        Args:
            X, X_valid: code strings, (id, code) pairs or Snippets.
            model: the model whose hidden states are probed: a name or directory, a
                `LoadedModel`, or None for the packaged default; kept as `model_`.
        """
        check_params(self)
        pairs = as_pairs(X)
        if X_valid is None:
            pairs, valid_pairs = holdout(pairs, self.validation_fraction, self.random_state + VALIDATION_SEED_SALT)
        else:
            valid_pairs = as_pairs(X_valid)
        extractor = self._extractor_for(model)
        train, valid = self.prepare(pairs, extractor=extractor), self.prepare(valid_pairs, extractor=extractor)
        return self.fit_splits(train, valid, model=model)

    def fit_splits(self, train: ProbeSplit, valid: ProbeSplit, *, model: str | LoadedModel | None = None) -> ASTProbe:
        """Train on prepared splits (see `prepare`): no model run if their hidden states are
        cached.

        model: the model the splits' hidden states came from (see `fit`), kept as `model_` to read
            new snippets with.
        """
        language = check_params(self)
        ensure_nonempty([train, valid], ["training", "validation"])
        self._check_split(train, language)
        self._check_split(valid, language)
        vocabs = split_vocabs(train)
        result = fit(
            train.data(self.hidden_state),
            valid.data(self.hidden_state),
            {language: vocabs},
            self.rank,
            config=self.config,
            random_state=self.random_state,
        )
        return self._set_fitted(
            result.module, vocabs, language=language, model=model, model_info=train.cache.model, fit_result=result
        )

    @classmethod
    def from_fit_result(
        cls, result: FitResult, train: ProbeSplit, *, model: str | LoadedModel | None = None, **params
    ) -> ASTProbe:
        """The fitted probe that `fit_splits(train, ...)` gives, from a training already run on
        `train` elsewhere (e.g. `sweeps.sweep`'s joint `fit_many`, with `split_vocabs(train)`).

        Args:
            result: the training's outcome.
            train: the split it trained on; the probe takes its language and preprocessing
                switches (`ProbeSplit.options`), its label vocabularies and model provenance.
            model: see `fit_splits`.
            params: the other constructor arguments (`rank`, `hidden_state`, `random_state`,
                `config`, ...); `rank` must be the trained projection's.

        Raises:
            InputError: settings that `fit_splits` would reject, or a `result` that does not
                match them (rank, label vocabularies).
        """
        probe = cls(**{"language": train.language, **train.options, **params})
        language = check_params(probe)
        ensure_nonempty([train], ["training"])
        probe._check_split(train, language)
        vocabs = split_vocabs(train)
        module = result.module
        if module.rank != probe.rank:
            raise InputError(f"the trained projection has rank {module.rank}, not {probe.rank}")
        sizes = tuple(
            int(v[language].shape[1]) if language in v else None for v in (module.vectors_c, module.vectors_u)
        )
        if sizes != (len(vocabs[0]), len(vocabs[1])):
            raise InputError(
                f"the trained label vectors ({sizes}) do not match the split's vocabularies "
                f"({len(vocabs[0])}, {len(vocabs[1])}): it was not trained on this split"
            )
        return probe._set_fitted(
            module, vocabs, language=language, model=model, model_info=train.cache.model, fit_result=result
        )

    def evaluate(self, X) -> ProbeScores:
        """P, R, F1 (means over snippets), label accuracies and d-pair accuracy on `X`."""
        self._fitted()
        return self.evaluate_split(self.prepare(as_pairs(X)))

    def evaluate_split(self, split: ProbeSplit) -> ProbeScores:
        module, vocabs = self._fitted()
        ensure_nonempty([split], ["evaluation"])
        self._check_split(split, self.language_)
        return evaluate(module, split.data(self.hidden_state), vocabs, self.config.device)

    def score(self, X, y=None) -> float:
        """Mean F1 of the recovered trees (higher is better, as scikit-learn expects); `y` is
        ignored (the gold trees come from parsing `X`), there for scikit-learn's signature."""
        return self.evaluate(X).f1

    def recall_by_label(self, X) -> LabelRecall:
        """Recall of the gold constituents per non-terminal label on `X`: the reference code's
        table (see `tree_scores.LabelRecall`)."""
        self._fitted()
        return self.recall_by_label_split(self.prepare(as_pairs(X)))

    def recall_by_label_split(self, split: ProbeSplit) -> LabelRecall:
        module, vocabs = self._fitted()
        ensure_nonempty([split], ["evaluation"])
        self._check_split(split, self.language_)
        pred = predict(module, split.data(self.hidden_state), vocabs, self.config.device).tuples
        return recall_by_label(pred, split.gold)

    def predict(self, X) -> list[RecoveredTree]:
        """The recovered tree of every usable snippet of `X` (see `ProbeSplit.dropped`)."""
        self._fitted()
        return self.predict_split(self.prepare(as_pairs(X)))

    def predict_split(self, split: ProbeSplit) -> list[RecoveredTree]:
        module, vocabs = self._fitted()
        if len(split) == 0:
            return []
        self._check_split(split, self.language_)
        pred = predict(module, split.data(self.hidden_state), vocabs, self.config.device).tuples
        return recovered_trees(pred, split)

    # -- data -------------------------------------------------------------------------------

    def prepare(
        self,
        X,
        *,
        model: str | LoadedModel | None = None,
        extractor: Extractor | None = None,
        model_label: str | None = None,
    ) -> ProbeSplit:
        """Parse `X`, extract gold tuples and cache every hidden state's token hidden states.

        The model that reads `X`: `extractor` if given, else `model` (see `extractor`).
        """
        language = check_params(self)
        return prepare_split(
            as_pairs(X),
            language,
            extractor or self.extractor(model),
            self._cache_root(),
            model_label=model_label,
            remove_docstrings=self.remove_docstrings,
            drop_line_continuations=self.drop_line_continuations,
            model_input=self.model_input,
        )

    def extractor(self, model: str | LoadedModel | None = None) -> Extractor:
        """The hidden-state extractor of `model` (None: the fitted `model_`; before fitting, the
        packaged default), loaded on first use and kept."""
        if model is None:
            model = getattr(self, "model_", None)
        return self._extractor_for(model)

    def _extractor_for(self, model: str | LoadedModel | None) -> Extractor:
        """`model`'s extractor (None: the packaged default); the last one is kept, so that
        `fit` and then `predict` with the same model load it once."""
        check_params(self)
        settings = (self.device, self.extraction_batch_size)
        kept = getattr(self, "_extractor", None)
        if (
            kept is not None
            and kept[1] == settings
            and (kept[0] is model or (isinstance(model, (str, os.PathLike)) and kept[0] == model))
        ):
            return kept[2]
        loaded = model if isinstance(model, LoadedModel) else load_model(model, device=self.device)
        extractor = Extractor(
            loaded,
            batch_size=self.extraction_batch_size,
            attention=False,
            hidden_states=True,
            length_policy="skip",
        )
        self._extractor = (model, settings, extractor)
        return extractor

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write `probe.safetensors` (B, V_c, V_u) and `probe.json` (settings, vocabularies,
        model and grammar provenance, training history) to directory `path`, each atomically
        (a reader never sees half a file; see `probe_files`)."""
        module, _ = self._fitted()
        return write_probe(path, module, probe_settings(self))

    @classmethod
    def load(cls, path: str | os.PathLike, *, model: str | LoadedModel | None = None, **kwargs) -> ASTProbe:
        """A fitted probe saved by `save`. Its `model_` is the saved model name unless `model`
        is given (e.g. a `LoadedModel` already in memory); `kwargs` override constructor
        settings (e.g. `cache_dir`, `device`). Probes saved before `layer` became
        `hidden_state` load too (see `probe_files.read_probe`)."""
        settings, module = read_probe(path)
        config = TrainConfig(**settings["config"])
        probe = cls(
            rank=settings["rank"],
            hidden_state=settings["hidden_state"],
            language=settings["language"],
            random_state=settings["random_state"],
            config=kwargs.pop("config", config),
            # Probes saved before these switches existed used the defaults.
            remove_docstrings=kwargs.pop("remove_docstrings", settings.get("remove_docstrings", False)),
            drop_line_continuations=kwargs.pop(
                "drop_line_continuations", settings.get("drop_line_continuations", False)
            ),
            model_input=kwargs.pop("model_input", settings.get("model_input", "source")),
            **kwargs,
        )
        language = check_params(probe)
        vocab = settings["vocabularies"][language]
        return probe._set_fitted(
            module.to(probe.config.device).eval(),
            (LabelVocab(tuple(vocab["c"])), LabelVocab(tuple(vocab["u"]))),
            language=language,
            model=model if model is not None else settings["model"],
            model_info=settings.get("model_info"),
            fit_result=None,
        )

    # -- helpers ----------------------------------------------------------------------------

    def _check_split(self, split: ProbeSplit, language: str) -> None:
        """`split` is in this probe's language, made with its switches, and holds its hidden
        state."""
        options = {
            "remove_docstrings": self.remove_docstrings,
            "drop_line_continuations": self.drop_line_continuations,
            "model_input": self.model_input,
        }
        split.check(language, options, self.hidden_state)

    def _cache_root(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir is not None else default_cache_dir()

    def _set_fitted(
        self,
        module: ProbeModule,
        vocabs: tuple[LabelVocab, LabelVocab],
        *,
        language: str,
        model: str | LoadedModel | None,
        model_info: dict | None,
        fit_result: FitResult | None,
    ) -> ASTProbe:
        """The one place that sets the fitted state (`fit_splits`, `from_fit_result`, `load`)."""
        self.module_, self.vocabs_, self.fit_result_ = module, vocabs, fit_result
        self.language_, self.model_, self.model_info_ = language, model, model_info
        return self

    def _fitted(self) -> tuple[ProbeModule, tuple[LabelVocab, LabelVocab]]:
        if getattr(self, "module_", None) is None or getattr(self, "vocabs_", None) is None:
            raise InputError("this ASTProbe is not fitted yet: call fit first")
        return self.module_, self.vocabs_

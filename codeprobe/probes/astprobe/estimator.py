"""`ASTProbe`: a small estimator in the scikit-learn style (fit, predict, score, save, load).

    probe = ASTProbe(rank=128, layer=3, language="python").fit(train_codes)
    probe.score(test_codes)            # mean F1 of the recovered trees
    trees = probe.predict(["def f(a): return a"])
    probe.save("runs/probe"); ASTProbe.load("runs/probe")

Inputs are code strings, (id, code) pairs or `codeprobe.datasets.Snippet`s. The model runs once
per snippet; its token vectors are cached on disk (see `cache`), so refitting at another layer or
rank, or scoring the same snippets again, never re-runs it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from safetensors.torch import load_file, save_file

from codeprobe.errors import InputError, ModelLoadError
from codeprobe.model import Extractor, LoadedModel, load_model
from codeprobe.probes.astprobe.data import ProbeSplit, as_pairs, ensure_nonempty, prepare_split
from codeprobe.probes.astprobe.probe import ProbeModule
from codeprobe.probes.astprobe.recovery import LabelRecall, constituents, recall_by_label, score
from codeprobe.probes.astprobe.evaluation import ProbeScores, evaluate, predict
from codeprobe.probes.astprobe.fitting import fit
from codeprobe.probes.astprobe.probe_run import FitResult
from codeprobe.probes.astprobe.train_config import TrainConfig
from codeprobe.probes.astprobe.vocab import LabelVocab
from codeprobe.syntax import grammar_info
from codeprobe.syntax.languages import canonical_language

SETTINGS_FILE = "probe.json"
WEIGHTS_FILE = "probe.safetensors"
VALIDATION_SEED_SALT = 7919


def default_cache_dir() -> Path:
    """Where token vectors are cached: $CODEPROBE_CACHE_DIR, else ~/.cache/codeprobe/astprobe."""
    env = os.environ.get("CODEPROBE_CACHE_DIR")
    return Path(env) / "astprobe" if env else Path.home() / ".cache" / "codeprobe" / "astprobe"


@dataclass(frozen=True)
class RecoveredTree:
    """One snippet's predicted tree beside its gold tree.

    Attributes:
        id: the snippet's id.
        tokens: the code tokens' texts.
        d: float64 (n - 1,), predicted squared distances; c (n - 1,), u (n,): predicted labels.
        predicted, gold: constituents (label, first token, last token) of the two trees.
        precision, recall, f1: this snippet's scores.
    """

    id: str
    tokens: tuple[str, ...]
    d: np.ndarray
    c: tuple[str, ...]
    u: tuple[str, ...]
    predicted: tuple[tuple[str, int, int], ...]
    gold: tuple[tuple[str, int, int], ...]
    precision: float
    recall: float
    f1: float


class ASTProbe:
    """AST-Probe on one model layer.

    Args:
        rank: dimension of the syntactic subspace (the paper: 128; sweeps 8..512).
        layer: hidden-states index (0 = embeddings, l = output of transformer layer l).
        language: the snippets' language.
        model: a model name or directory, a `LoadedModel`, or None for the packaged default.
        random_state: seeds initialisation, batch order and the validation split.
        config: optimisation settings (default: the spec's).
        validation_fraction: share of `fit`'s snippets held out for early stopping when no
            `X_valid` is given.
        cache_dir: root of the token-vector caches (default: `default_cache_dir()`).
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
    """

    def __init__(
        self,
        rank: int = 128,
        layer: int = 3,
        *,
        language: str = "python",
        model: str | LoadedModel | None = None,
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
        self.layer = layer
        self.language = canonical_language(language)
        self.model = model
        self.random_state = random_state
        self.config = config
        self.validation_fraction = validation_fraction
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.device = device
        self.extraction_batch_size = extraction_batch_size
        self.remove_docstrings = remove_docstrings
        self.drop_line_continuations = drop_line_continuations
        self.model_input = model_input
        self._extractor: Extractor | None = None
        self.module_: ProbeModule | None = None
        self.vocabs_: tuple[LabelVocab, LabelVocab] | None = None
        self.fit_result_: FitResult | None = None
        self.model_info_: dict | None = None

    # -- scikit-learn style API -------------------------------------------------------------

    def fit(self, X, X_valid=None) -> ASTProbe:
        """Train on snippets `X`; early stopping on `X_valid` (default: a held-out share of X)."""
        pairs = as_pairs(X)
        if X_valid is None:
            rng = np.random.default_rng(self.random_state + VALIDATION_SEED_SALT)
            order = rng.permutation(len(pairs))
            n_valid = max(1, int(round(self.validation_fraction * len(pairs))))
            if len(pairs) - n_valid < 1:
                raise InputError("too few snippets to hold out a validation share: pass X_valid")
            valid_pairs = [pairs[i] for i in sorted(order[:n_valid])]
            pairs = [pairs[i] for i in sorted(order[n_valid:])]
        else:
            valid_pairs = as_pairs(X_valid)
        return self.fit_splits(self.prepare(pairs), self.prepare(valid_pairs))

    def fit_splits(self, train: ProbeSplit, valid: ProbeSplit) -> ASTProbe:
        """Train on prepared splits (see `prepare`): no model run if their vectors are cached."""
        ensure_nonempty([train, valid], ["training", "validation"])
        self._check_layer(train)
        vocabs = (LabelVocab.build(t.c for t in train.tuples), LabelVocab.build(t.u for t in train.tuples))
        result = fit(
            train.data(self.layer),
            valid.data(self.layer),
            {self.language: vocabs},
            self.rank,
            config=self.config,
            random_state=self.random_state,
        )
        self.module_, self.vocabs_, self.fit_result_ = result.module, vocabs, result
        self.model_info_ = train.cache.model
        return self

    def evaluate(self, X) -> ProbeScores:
        """P, R, F1 (means over snippets), label accuracies and d-pair accuracy on `X`."""
        return self.evaluate_split(self.prepare(as_pairs(X)))

    def evaluate_split(self, split: ProbeSplit) -> ProbeScores:
        module, vocabs = self._fitted()
        ensure_nonempty([split], ["evaluation"])
        return evaluate(module, split.data(self.layer), vocabs, self.config.device)

    def score(self, X) -> float:
        """Mean F1 of the recovered trees (higher is better, as scikit-learn expects)."""
        return self.evaluate(X).f1

    def recall_by_label(self, X) -> LabelRecall:
        """Recall of the gold constituents per non-terminal label on `X`: the reference code's
        table (see `recovery.LabelRecall`)."""
        return self.recall_by_label_split(self.prepare(as_pairs(X)))

    def recall_by_label_split(self, split: ProbeSplit) -> LabelRecall:
        module, vocabs = self._fitted()
        ensure_nonempty([split], ["evaluation"])
        pred = predict(module, split.data(self.layer), vocabs, self.config.device).tuples
        return recall_by_label(pred, split.gold)

    def predict(self, X) -> list[RecoveredTree]:
        """The recovered tree of every usable snippet of `X` (see `ProbeSplit.dropped`)."""
        return self.predict_split(self.prepare(as_pairs(X)))

    def predict_split(self, split: ProbeSplit) -> list[RecoveredTree]:
        module, vocabs = self._fitted()
        if len(split) == 0:
            return []
        pred = predict(module, split.data(self.layer), vocabs, self.config.device).tuples
        per = score(pred, split.gold)
        pred_cons, gold_cons = constituents(pred), constituents(split.gold)
        tok = np.r_[0, np.cumsum(pred.lengths)]
        pairs = np.r_[0, np.cumsum(pred.lengths - 1)]
        out = []
        for i, ident in enumerate(split.ids):
            c_ids = pred.c[pairs[i] : pairs[i + 1]]
            u_ids = pred.u[tok[i] : tok[i + 1]]
            out.append(
                RecoveredTree(
                    id=ident,
                    tokens=split.tuples[i].tokens.texts,
                    d=pred.d[pairs[i] : pairs[i + 1]],
                    c=tuple(pred.c_names[k] for k in c_ids),
                    u=tuple(pred.u_names[k] for k in u_ids),
                    predicted=tuple(pred_cons.of(i)),
                    gold=tuple(gold_cons.of(i)),
                    precision=float(per.precision[i]),
                    recall=float(per.recall[i]),
                    f1=float(per.f1[i]),
                )
            )
        return out

    # -- data -------------------------------------------------------------------------------

    def prepare(self, X, *, extractor: Extractor | None = None, model_label: str | None = None) -> ProbeSplit:
        """Parse `X`, extract gold tuples and cache every layer's token vectors."""
        return prepare_split(
            as_pairs(X),
            self.language,
            extractor or self.extractor(),
            self.cache_dir,
            model_label=model_label,
            remove_docstrings=self.remove_docstrings,
            drop_line_continuations=self.drop_line_continuations,
            model_input=self.model_input,
        )

    def extractor(self) -> Extractor:
        """The model's vector extractor (loaded on first use)."""
        if self._extractor is None:
            loaded = self.model if isinstance(self.model, LoadedModel) else load_model(self.model, device=self.device)
            self._extractor = Extractor(
                loaded,
                batch_size=self.extraction_batch_size,
                attention=False,
                vectors=True,
                length_policy="skip",
            )
        return self._extractor

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write `probe.safetensors` (B, V_c, V_u) and `probe.json` (settings, vocabularies,
        model and grammar provenance, training history) to directory `path`."""
        module, (c_vocab, u_vocab) = self._fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        save_file(tensors, str(path / WEIGHTS_FILE))
        grammar = grammar_info(self.language)
        result = self.fit_result_
        settings = {
            "format": 1,
            "model": None if isinstance(self.model, LoadedModel) else self.model,
            "model_info": self.model_info_,
            "layer": self.layer,
            "rank": self.rank,
            "language": self.language,
            "languages": list(module.vectors_c),
            "vocabularies": {self.language: {"c": list(c_vocab.labels), "u": list(u_vocab.labels)}},
            "grammars": {self.language: {"package": grammar.package, "version": grammar.package_version}},
            "random_state": self.random_state,
            "remove_docstrings": self.remove_docstrings,
            "drop_line_continuations": self.drop_line_continuations,
            "model_input": self.model_input,
            "config": asdict(self.config),
            "training": None if result is None else {
                "best_epoch": result.best_epoch,
                "hit_max_epochs": result.hit_max_epochs,
                "best_valid_loss": result.best_valid_loss,
                "rollbacks": list(result.rollbacks),
                "history": [asdict(r) for r in result.history],
            },
        }
        (path / SETTINGS_FILE).write_text(json.dumps(settings, indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, model: str | LoadedModel | None = None, **kwargs) -> ASTProbe:
        """A probe saved by `save`. The model is the saved one unless `model` is given;
        `kwargs` override constructor settings (e.g. `cache_dir`, `device`)."""
        path = Path(path)
        try:
            settings = json.loads((path / SETTINGS_FILE).read_text(encoding="utf-8"))
            tensors = load_file(str(path / WEIGHTS_FILE))
        except (OSError, ValueError) as err:
            raise ModelLoadError(f"cannot load a probe from {path}: {err}") from err
        language = settings["language"]
        installed = grammar_info(language).package_version
        saved = settings["grammars"][language]["version"]
        if installed != saved:
            raise ModelLoadError(
                f"probe trained with {settings['grammars'][language]['package']} {saved}, "
                f"but {installed} is installed: its labels would not match"
            )
        config = TrainConfig(**settings["config"])
        probe = cls(
            rank=settings["rank"],
            layer=settings["layer"],
            language=language,
            model=model if model is not None else settings["model"],
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
        vocab = settings["vocabularies"][language]
        probe.vocabs_ = (LabelVocab(tuple(vocab["c"])), LabelVocab(tuple(vocab["u"])))
        sizes = {}
        for lang in settings["languages"]:
            sizes[lang] = (tensors[f"vectors_c.{lang}"].shape[1], tensors[f"vectors_u.{lang}"].shape[1])
        module = ProbeModule(tensors["proj"].shape[0], tensors["proj"].shape[1], sizes)
        module.load_state_dict(tensors)  # names: proj, vectors_c.<language>, vectors_u.<language>
        probe.module_ = module.to(probe.config.device).eval()
        probe.model_info_ = settings.get("model_info")
        return probe

    # -- helpers ----------------------------------------------------------------------------

    def _fitted(self) -> tuple[ProbeModule, tuple[LabelVocab, LabelVocab]]:
        if self.module_ is None or self.vocabs_ is None:
            raise InputError("this ASTProbe is not fitted yet: call fit first")
        return self.module_, self.vocabs_

    def _check_layer(self, split: ProbeSplit) -> None:
        if not 0 <= self.layer < split.cache.n_states:
            raise InputError(
                f"layer {self.layer} does not exist: the model has hidden states 0..{split.cache.n_states - 1}"
            )

    def __repr__(self) -> str:
        return f"ASTProbe(rank={self.rank}, layer={self.layer}, language={self.language!r})"


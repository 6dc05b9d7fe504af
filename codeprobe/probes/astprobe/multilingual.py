"""The multilingual follow-up's analyses (Antolin1/multilingual-ast-probe).

- Shared subspace: one projection B for all languages, label vectors V_c, V_u per language,
  trained on batches of every language (each batch is of one language).
- Direct transfer: probe language T with the projection learned on language S. T's label
  vectors are carried over through the hidden space, as the follow-up's run_transfer.py does:
  V'_T = B_S^T B_T V_T (B_T V_T are T's label directions in hidden space).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from codeprobe.errors import InputError
from codeprobe.probes.astprobe.data import ProbeSplit
from codeprobe.probes.astprobe.evaluation import ProbeScores, evaluate
from codeprobe.probes.astprobe.fitting import fit
from codeprobe.probes.astprobe.probe import ProbeModule
from codeprobe.probes.astprobe.probe_run import FitResult
from codeprobe.probes.astprobe.train_config import TrainConfig
from codeprobe.probes.astprobe.vocab import LabelVocab


@dataclass(frozen=True)
class LanguageProbe:
    """A trained probe and the label vocabularies of each language it knows."""

    module: ProbeModule
    vocabs: dict[str, tuple[LabelVocab, LabelVocab]]
    hidden_state: int
    result: FitResult | None = None

    def evaluate(self, tests: Mapping[str, ProbeSplit], device: str = "cpu") -> dict[str, ProbeScores]:
        """Scores on each language's test split."""
        return {
            lang: evaluate(self.module, split.data(self.hidden_state), self.vocabs[lang], device)
            for lang, split in tests.items()
        }


def fit_languages(
    train: Mapping[str, ProbeSplit],
    valid: Mapping[str, ProbeSplit],
    hidden_state: int,
    rank: int = 128,
    *,
    config: TrainConfig = TrainConfig(),
    random_state: int = 0,
) -> LanguageProbe:
    """One probe for all languages of `train`: a shared projection, per-language label vectors
    (vocabularies from each language's training split). With one language this is the
    monolingual probe."""
    if set(train) != set(valid):
        raise InputError("train and valid need the same languages")
    vocabs = {
        lang: (LabelVocab.build(t.c for t in split.tuples), LabelVocab.build(t.u for t in split.tuples))
        for lang, split in train.items()
    }
    result = fit(
        [split.data(hidden_state) for split in train.values()],
        [valid[lang].data(hidden_state) for lang in train],
        vocabs,
        rank,
        config=config,
        random_state=random_state,
    )
    return LanguageProbe(result.module, vocabs, hidden_state, result)


def transfer(source: LanguageProbe, target: LanguageProbe, language: str) -> LanguageProbe:
    """Probe `language` with `source`'s projection and `target`'s label vectors mapped through
    the hidden space (V' = B_S^T B_T V_T)."""
    if language not in target.vocabs:
        raise InputError(f"the target probe does not know {language}")
    if source.hidden_state != target.hidden_state or source.module.proj.shape != target.module.proj.shape:
        raise InputError("source and target probes need the same hidden state, width and rank")
    b_s = source.module.proj.detach()
    b_t = target.module.proj.detach()
    c_vocab, u_vocab = target.vocabs[language]
    module = ProbeModule(b_s.shape[0], b_s.shape[1], {language: (len(c_vocab), len(u_vocab))})
    with torch.no_grad():
        module.proj.copy_(b_s)
        module.vectors_c[language].copy_(b_s.T @ b_t @ target.module.vectors_c[language].detach())
        module.vectors_u[language].copy_(b_s.T @ b_t @ target.module.vectors_u[language].detach())
    return LanguageProbe(module.eval(), {language: target.vocabs[language]}, target.hidden_state)


def transfer_matrix(
    probes: Mapping[str, LanguageProbe], tests: Mapping[str, ProbeSplit], device: str = "cpu"
) -> dict[str, dict[str, float]]:
    """F1 of every (source, target) pair of monolingual probes: `out[source][target]`; the
    diagonal is each probe on its own language."""
    out: dict[str, dict[str, float]] = {}
    for s, src in probes.items():
        out[s] = {}
        for t, tgt in probes.items():
            probe = src if s == t else transfer(src, tgt, t)
            out[s][t] = probe.evaluate({t: tests[t]}, device)[t].f1
    return out

"""CAT-probing (Chen et al., EMNLP 2022 Findings): how much a model's token attention agrees
with the distance between tokens in the code's syntax tree, per layer (and head).

See the spec in shared/specs/cat-probing.md; the conventions are documented where they are used.
"""

from codeprobe.probes.cat.baselines import positional_attention, random_attention
from codeprobe.probes.cat.dataset import CATSample, SkippedSample, score_sample, score_samples
from codeprobe.probes.cat.probe import CATProbe, SnippetInputs
from codeprobe.probes.cat.results import MEAN_HEAD, CATResult, CATSampleScores, CATSummary
from codeprobe.probes.cat.score import DEFAULT_QUANTILE, attention_thresholds, cat_scores, linear_quantile
from codeprobe.probes.cat.scorer import CATAccumulator
from codeprobe.probes.cat.types import (
    DEFAULT_TOP_K,
    PAPER_TYPES,
    STRATEGIES,
    TypeRateAccumulator,
    TypeRates,
    default_strategy,
    select_types,
)

__all__ = [
    "DEFAULT_QUANTILE",
    "DEFAULT_TOP_K",
    "MEAN_HEAD",
    "PAPER_TYPES",
    "STRATEGIES",
    "CATAccumulator",
    "CATProbe",
    "CATResult",
    "CATSample",
    "CATSampleScores",
    "CATSummary",
    "SkippedSample",
    "SnippetInputs",
    "TypeRateAccumulator",
    "TypeRates",
    "attention_thresholds",
    "cat_scores",
    "default_strategy",
    "linear_quantile",
    "positional_attention",
    "random_attention",
    "score_sample",
    "score_samples",
    "select_types",
]

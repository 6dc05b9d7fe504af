"""Which heads attend along the syntax: per-head relation scores and their baselines.

For each relation, layer and head: top-k accuracy (the dependent's first, any or last token
among the head token's k most attended tokens, and the reverse direction) as Clark et al.
(BlackboxNLP 2019, arXiv:1906.04341) and CodeSyntax (Shen et al., EMNLP 2022 Findings,
arXiv:2210.14473) measure it, and the weight the dependent gets (SAS-style, Chen et al., ICLR
2024, arXiv:2309.07311); against fixed-offset, offset + keyword and random-attention baselines;
the best head per relation chosen on validation and reported on test with bootstrap intervals.

- `codeprobe.probes.heads.edges`: the inputs (`EdgeArrays`, `HeadsSample`).
- `codeprobe.probes.heads.score`: the vectorised per-edge scores and their conventions.
- `codeprobe.probes.heads.baselines`: rule predictors and random attention.
- `codeprobe.probes.heads.scorer`: the streaming `HeadsAccumulator`.
- `codeprobe.probes.heads.results`: `evaluate` (validation -> test) and `HeadsResult`.
"""

from codeprobe.probes.heads.baselines import DEFAULT_MAX_OFFSET, predictor_names, random_rows, rule_hits
from codeprobe.probes.heads.edges import EdgeArrays, HeadsSample, on_kept_tokens
from codeprobe.probes.heads.results import BASELINES, HeadsResult, RelationScore, RelationSummary, SASScore, evaluate
from codeprobe.probes.heads.score import (
    DEFAULT_KS,
    DEPENDENT,
    DIRECTIONS,
    SAS_DIRECTIONS,
    SCORES,
    EdgeScores,
    score_edges,
    score_index,
    score_rows,
)
from codeprobe.probes.heads.scorer import HeadsAccumulator, RelationTotals

__all__ = [
    "BASELINES",
    "DEFAULT_KS",
    "DEFAULT_MAX_OFFSET",
    "DEPENDENT",
    "DIRECTIONS",
    "SAS_DIRECTIONS",
    "SCORES",
    "EdgeScores",
    "HeadsAccumulator",
    "HeadsResult",
    "HeadsSample",
    "EdgeArrays",
    "RelationScore",
    "RelationSummary",
    "RelationTotals",
    "SASScore",
    "evaluate",
    "on_kept_tokens",
    "predictor_names",
    "random_rows",
    "rule_hits",
    "score_edges",
    "score_index",
    "score_rows",
]

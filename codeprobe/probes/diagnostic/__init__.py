"""Diagnostic classifiers with control tasks and MDL: what a linear probe reads off each hidden
state about a code token's place in the syntax.

- `codeprobe.probes.diagnostic.labels`: per-token labels from the token tree and the AST: the
  parent node type (AST node tagging) and the token-tree depth bucket (`LABEL_TASKS`).
- `codeprobe.probes.diagnostic.vocabulary`: `LabelVocabulary`, label names to class ids, rare
  labels merged into `OTHER` (chosen on training labels).
- `codeprobe.probes.diagnostic.estimators`: `DiagnosticClassifier` (softmax regression, one
  hidden state) and `StackedDiagnosticClassifier` (every hidden state at once), scikit-learn
  estimators saved as safetensors.
- `codeprobe.probes.diagnostic.control`: `ControlTask` (Hewitt & Liang, EMNLP 2019,
  arXiv:1909.03368): a random label per token type; `evaluation.selectivity`.
- `codeprobe.probes.diagnostic.mdl`: `online_code` (Voita & Titov, EMNLP 2020,
  arXiv:2003.12298): online codelength, uniform codelength and compression.
- `codeprobe.probes.diagnostic.training`, `data`: the stacked training (the structural probes'
  Adam, schedule and recipe) and the joined token inputs.

docs/diagnostic.md describes them; the structural probes are `codeprobe.probes.structural`.
"""

from codeprobe.probes.diagnostic.control import ControlTask
from codeprobe.probes.diagnostic.estimators import DiagnosticClassifier, StackedDiagnosticClassifier
from codeprobe.probes.diagnostic.evaluation import AccuracyEvaluation, selectivity
from codeprobe.probes.diagnostic.labels import (
    DEPTH_BUCKET_EDGES,
    DEPTH_BUCKETS,
    LABEL_TASKS,
    NO_PARENT,
    depth_buckets,
    parent_types,
    token_labels,
)
from codeprobe.probes.diagnostic.mdl import ONLINE_PORTIONS, OnlineCode, block_boundaries, codelength, online_code
from codeprobe.probes.diagnostic.vocabulary import DEFAULT_MIN_COUNT, OTHER, LabelVocabulary

__all__ = [
    "DEFAULT_MIN_COUNT",
    "DEPTH_BUCKETS",
    "DEPTH_BUCKET_EDGES",
    "LABEL_TASKS",
    "NO_PARENT",
    "ONLINE_PORTIONS",
    "OTHER",
    "AccuracyEvaluation",
    "ControlTask",
    "DiagnosticClassifier",
    "LabelVocabulary",
    "OnlineCode",
    "StackedDiagnosticClassifier",
    "block_boundaries",
    "codelength",
    "depth_buckets",
    "online_code",
    "parent_types",
    "selectivity",
    "token_labels",
]

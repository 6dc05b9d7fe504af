"""Structural probes (Hewitt & Manning, NAACL 2019, N19-1419): how well a model's hidden states
encode the code's token tree (`codeprobe.syntax.token_tree`) as distances and depths.

- `codeprobe.probes.structural.metrics`: UUAS, DSpr, NSpr and root accuracy against the gold
  token tree, their corpus figures, and the linear baseline (distance |i - j|).
- `codeprobe.probes.structural.estimators`: the distance and depth probes as scikit-learn
  estimators, on one hidden state or on all of them at once (stacked), saved as safetensors.
- `codeprobe.probes.structural.evaluation`: their per-snippet scores with bootstrap intervals.
- `codeprobe.probes.structural.training`: the losses, the stacked training loop, `FitRecord`.
- `codeprobe.probes.structural.control`: the control tree (Hewitt & Liang, arXiv:1909.03368):
  each token type attaches, fixed by the seed, to the first token, the last or its left
  neighbour; a probe fitted to it gives selectivity.
- `codeprobe.probes.structural.config`: `StructuralTrainConfig`, the reference's recipe.
- `codeprobe.probes.structural.data`: the inputs' checks, gold targets and batches.
- `codeprobe.probes.structural.vectors`: a model's hidden states pooled onto each snippet's
  token-tree tokens (`token_tree_vectors`), the probes' X and y read from code.

docs/structural.md describes them.
"""

from codeprobe.probes.structural.config import StructuralTrainConfig
from codeprobe.probes.structural.control import ControlTree, control_tree, control_trees
from codeprobe.probes.structural.data import TARGETS
from codeprobe.probes.structural.estimators import (
    DepthProbe,
    DistanceProbe,
    StackedDepthProbe,
    StackedDistanceProbe,
)
from codeprobe.probes.structural.evaluation import (
    DepthEvaluation,
    DistanceEvaluation,
    depth_evaluations,
    distance_evaluations,
)
from codeprobe.probes.structural.metrics import (
    DEFAULT_MIN_SNIPPETS,
    HEWITT_MANNING_LENGTHS,
    DepthScores,
    DistanceScores,
    LengthAverage,
    corpus_uuas,
    depth_scores,
    distance_scores,
    dspr,
    length_macro_average,
    linear_baseline,
    linear_distance,
    nspr,
    qualifying_lengths,
    root_accuracy,
    spanning_tree,
    uuas,
    uuas_counts,
)
from codeprobe.probes.structural.training import EpochRecord, FitRecord, fit_stacked

__all__ = [
    "DEFAULT_MIN_SNIPPETS",
    "ControlTree",
    "HEWITT_MANNING_LENGTHS",
    "TARGETS",
    "DepthEvaluation",
    "DepthProbe",
    "DepthScores",
    "DistanceEvaluation",
    "DistanceProbe",
    "DistanceScores",
    "EpochRecord",
    "FitRecord",
    "LengthAverage",
    "StackedDepthProbe",
    "StackedDistanceProbe",
    "StructuralTrainConfig",
    "control_tree",
    "control_trees",
    "corpus_uuas",
    "depth_evaluations",
    "depth_scores",
    "distance_evaluations",
    "distance_scores",
    "dspr",
    "fit_stacked",
    "length_macro_average",
    "linear_baseline",
    "linear_distance",
    "nspr",
    "qualifying_lengths",
    "root_accuracy",
    "spanning_tree",
    "uuas",
    "uuas_counts",
]

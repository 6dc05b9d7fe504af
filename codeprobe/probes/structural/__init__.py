"""Structural probes (Hewitt & Manning, NAACL 2019, N19-1419): how well a model's hidden states
encode the code's token tree (`codeprobe.syntax.token_tree`) as distances and depths.

- `codeprobe.probes.structural.metrics`: UUAS, DSpr, NSpr and root accuracy against the gold
  token tree, their corpus figures, and the linear baseline (distance |i - j|).
"""

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

__all__ = [
    "DEFAULT_MIN_SNIPPETS",
    "HEWITT_MANNING_LENGTHS",
    "DepthScores",
    "DistanceScores",
    "LengthAverage",
    "corpus_uuas",
    "depth_scores",
    "distance_scores",
    "dspr",
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
